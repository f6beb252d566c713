#!/usr/bin/env bash
# Beyond the thesis (issue 29, docs/results.md): Standard + RRDA against the share of training images with a labelled
# mask, next to Standard, GroupDRO, JTT, DFR and balanced ERM, on the embedded benchmark, then its report.
#   bash scripts/beyond_masks.sh [report folder]      (the 20 jobs of experiment=beyond_masks, two at a time)
set -euo pipefail
cd "$(dirname "$0")/.."
RRX=${RRX:-.venv/bin/rrx}
sweep=outputs/beyond_masks/$(date +%Y-%m-%d_%H-%M-%S)
jobs=$(nproc)
OMP_NUM_THREADS=1 $RRX train -m experiment=beyond_masks trainer.progress=false hydra.sweep.dir="$sweep" \
  hydra/launcher=local_parallel hydra.launcher.gpus_per_node=0 hydra.sweeper.max_batch_size="$jobs" ||
  compgen -G "$sweep/*/metrics.json" >/dev/null || { echo "no job of $sweep finished" >&2; exit 1; }
$RRX report runs="$sweep" hydra.run.dir="${1:-$sweep/report}"
