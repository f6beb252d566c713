#!/usr/bin/env bash
# The project's showcase (docs/embedded/): the reduced thesis grid on the embedded benchmark, the analyses of its
# Standard and Standard + RRDA models (scripts/embedded_analyses.sh), then its report.
#   bash scripts/embedded.sh [report folder]      (about an hour on 2 CPU cores)
set -euo pipefail
cd "$(dirname "$0")/.."
RRX=${RRX:-.venv/bin/rrx}
sweep=outputs/embedded/$(date +%Y-%m-%d_%H-%M-%S)
$RRX train -m experiment=embedded trainer.progress=false hydra.sweep.dir="$sweep"
RRX=$RRX bash scripts/embedded_analyses.sh "$sweep"
$RRX report runs="$sweep" hydra.run.dir="${1:-$sweep/report}"
