#!/usr/bin/env bash
# Beyond the thesis (issue 29): RRDA on masks from a U-Net trained on the labelled share p of the training masks.
#   bash scripts/beyond_masks_segmenter.sh <sweep folder>     (scripts/beyond_masks.sh runs it into its sweep)
# One U-Net per p (task=segmentation mask=fraction, seed 0: the labelled share of seed 0) on the embedded benchmark's
# training images; each sees the same number of images, 2.5 / p epochs of its share (10 epochs of 25 %, 250 of 1 %).
# Then experiment=beyond_masks's RRDA on each U-Net's masks (the labelled share keeps its own), 3 seeds.
set -euo pipefail
cd "$(dirname "$0")/.."
RRX=${RRX:-.venv/bin/rrx}
sweep=${1:?give the sweep folder}
segmenters=()
mkdir -p "$sweep/segmenter"
for p_epochs in 0.01:250 0.05:50 0.25:10; do
  p=${p_epochs%:*}
  folder="$sweep/segmenter/p-$p"
  segmenters+=("$folder")
  OMP_NUM_THREADS=1 $RRX train task=segmentation method=standard mask=fraction mask.p="$p" seed=0 \
    trainer.epochs="${p_epochs#*:}" segmentation.robustness_window=32 trainer.progress=false \
    hydra.run.dir="$folder" >"$sweep/segmenter/p-$p.log" 2>&1 &
  [[ $(jobs -r | wc -l) -lt $(nproc) ]] || wait -n
done
wait
for folder in "${segmenters[@]}"; do
  [[ -f $folder/metrics.json ]] || { echo "the segmenter $folder did not finish: see its log beside it" >&2; exit 1; }
done
checkpoints=$(IFS=,; echo "${segmenters[*]}")
OMP_NUM_THREADS=1 $RRX train -m experiment=beyond_masks method=rrda mask=segmenter mask.checkpoint="$checkpoints" \
  mask_grid=null mask_index=0 seed=0,1,2 trainer.progress=false hydra.sweep.dir="$sweep/segmenter_masks" \
  hydra/launcher=local_parallel hydra.launcher.gpus_per_node=0 hydra.sweeper.max_batch_size="$(nproc)"
