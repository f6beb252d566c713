#!/usr/bin/env bash
# The project's showcase (docs/embedded/): the reduced thesis grid on the embedded benchmark, the analyses of its
# Standard and Standard + RRDA models (scripts/embedded_analyses.sh), then its report.
#   bash scripts/embedded.sh [report folder]      (34 min on 2 quiet CPU cores: 31 for the 28 runs, 3 for the analyses)
set -euo pipefail
cd "$(dirname "$0")/.."
RRX=${RRX:-.venv/bin/rrx}
sweep=outputs/embedded/$(date +%Y-%m-%d_%H-%M-%S)
# One job per CPU at a time, one thread each (hydra/launcher=local_parallel): on 2 cores two single-threaded jobs get
# through the grid faster than one job on two threads (the small models scale poorly across threads).
jobs=$(nproc)
OMP_NUM_THREADS=1 $RRX train -m experiment=embedded trainer.progress=false hydra.sweep.dir="$sweep" \
  hydra/launcher=local_parallel hydra.launcher.gpus_per_node=0 hydra.sweeper.max_batch_size="$jobs"
RRX=$RRX bash scripts/embedded_analyses.sh "$sweep"
$RRX report runs="$sweep" hydra.run.dir="${1:-$sweep/report}"
