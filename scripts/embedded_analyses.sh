#!/usr/bin/env bash
# Reading the showcase's models (issue 12): localisation, ObEy, the wIoU with the labelled object and Focus of the
# Standard and Standard + RRDA runs of an embedded sweep, written under <sweep>/analyses/ where `rrx report runs=<sweep>` adds them to their runs.
#   bash scripts/embedded_analyses.sh <sweep folder>      (called by scripts/embedded.sh; about 5 minutes on 2 CPU cores)
set -euo pipefail
cd "$(dirname "$0")/.."
RRX=${RRX:-.venv/bin/rrx}
sweep=$1
for run in "$sweep"/*_method-standard_* "$sweep"/*_method-rrda_*; do
  [ -f "$run/metrics.json" ] || continue   # a failed or unfinished job has nothing to read
  name=$(basename "$run")
  mosaic=()
  case $name in *vit_test*) mosaic=(analysis.mosaic_size=64) ;; esac   # the test ViT takes 64 px images only
  common=(checkpoint="$run" trainer.progress=false analysis.attribution=[saliency,gradcam])
  $RRX analyze analysis=localisation "${common[@]}" hydra.run.dir="$sweep/analyses/localisation/$name"
  # ObEy over the object and the background's stripes (seed 002, Eq. 2), and the wIoU with the labelled object
  $RRX analyze analysis=obey "${common[@]}" analysis.object_masks=synthetic hydra.run.dir="$sweep/analyses/obey/$name"
  $RRX analyze analysis=obey "${common[@]}" hydra.run.dir="$sweep/analyses/wiou/$name"
  $RRX analyze analysis=focus "${common[@]}" "${mosaic[@]}" hydra.run.dir="$sweep/analyses/focus/$name"
done
