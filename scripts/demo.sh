#!/usr/bin/env bash
# The main job on the embedded benchmark: Standard and Standard+RRDA ResNet-18, background challenge, Table 5.
set -euo pipefail
rrx=".venv/bin/rrx"
sweep="outputs/demo/$(date +%Y-%m-%d_%H-%M-%S)"
start=$(date +%s)
"$rrx" train -m experiment=demo method=standard,rrda hydra.sweep.dir="$sweep"
"$rrx" report runs="$sweep" hydra.run.dir="$sweep/report"
echo "demo finished in $(( $(date +%s) - start )) s; results in $sweep"
