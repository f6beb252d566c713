#!/usr/bin/env bash
# The project's showcase (docs/embedded/): the reduced thesis grid on the embedded benchmark, the analyses of its
# Standard and Standard + RRDA models (scripts/embedded_analyses.sh), then its report.
#   bash scripts/embedded.sh [report folder]      (about 31 min on 2 quiet Intel Xeon cores: 26 for the 28 runs, 5 for the analyses)
set -euo pipefail
cd "$(dirname "$0")/.."
RRX=${RRX:-.venv/bin/rrx}
sweep=outputs/embedded/$(date +%Y-%m-%d_%H-%M-%S)
# One job per CPU at a time, one thread each (hydra/launcher=local_parallel): on 2 cores two single-threaded jobs get
# through the grid faster than one job on two threads (the small models scale poorly across threads).
jobs=$(nproc)
# A job that fails (RRR's runs that diverge to NaN) makes the sweep exit 1 naming it; the showcase goes on, and the
# report lists it as skipped with its reason. A sweep that finished no job at all stops here.
OMP_NUM_THREADS=1 $RRX train -m experiment=embedded trainer.progress=false hydra.sweep.dir="$sweep" \
  hydra/launcher=local_parallel hydra.launcher.gpus_per_node=0 hydra.sweeper.max_batch_size="$jobs" ||
  compgen -G "$sweep/*/metrics.json" >/dev/null || { echo "no job of $sweep finished" >&2; exit 1; }
RRX=$RRX bash scripts/embedded_analyses.sh "$sweep"
$RRX report runs="$sweep" hydra.run.dir="${1:-$sweep/report}"
