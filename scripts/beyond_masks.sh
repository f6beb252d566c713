#!/usr/bin/env bash
# Beyond the thesis (issue 29, docs/results.md): Standard + RRDA against the share of training images with a labelled
# mask, next to Standard, GroupDRO, JTT, DFR (on pairs and coarser groups) and balanced ERM, on the embedded benchmark,
# then its report.
#   bash scripts/beyond_masks.sh [report folder]      (the 33 jobs of experiment=beyond_masks, 9 on Grad-CAM masks,
#   3 U-Nets and 9 on their masks, two at a time)
set -euo pipefail
cd "$(dirname "$0")/.."
RRX=${RRX:-.venv/bin/rrx}
sweep=outputs/beyond_masks/$(date +%Y-%m-%d_%H-%M-%S)
jobs=$(nproc)
OMP_NUM_THREADS=1 $RRX train -m experiment=beyond_masks trainer.progress=false hydra.sweep.dir="$sweep" \
  hydra/launcher=local_parallel hydra.launcher.gpus_per_node=0 hydra.sweeper.max_batch_size="$jobs" ||
  compgen -G "$sweep/*/metrics.json" >/dev/null || { echo "no job of $sweep finished" >&2; exit 1; }
# RRDA on masks made without labelling: Grad-CAM of the Standard model of seed 0 (the top quarter of each map), with
# a labelled share p kept; the same 5 epochs, held-out share and seeds (mask_grid=null: the sweep's own mask)
standard=$(compgen -G "$sweep/*_method-standard_seed-0" | head -1)
OMP_NUM_THREADS=1 $RRX train -m experiment=beyond_masks method=rrda mask=attribution mask.checkpoint="$standard" \
  mask.p=0,0.05,0.25 mask_grid=null mask_index=0 seed=0,1,2 trainer.progress=false hydra.sweep.dir="$sweep/attribution" \
  hydra/launcher=local_parallel hydra.launcher.gpus_per_node=0 hydra.sweeper.max_batch_size="$jobs" ||
  echo "some attribution-mask jobs failed: the report lists them" >&2
# RRDA on masks from U-Nets trained on the labelled share p (the segmenter source), the same 5 epochs and seeds
RRX=$RRX bash scripts/beyond_masks_segmenter.sh "$sweep" ||
  echo "some segmenter-mask jobs failed: the report lists them" >&2
$RRX report runs="$sweep" hydra.run.dir="${1:-$sweep/report}"
