#!/usr/bin/env bash
# The method comparison: synthetic benchmark (every method, small lambda sweep, challenge=all),
# Table 10 on Decoy/Color digits and Table 9 on the toy rules problem. Each group ends with `rrx report`.
#   bash scripts/results.sh [output folder]        (RRX=<rrx command> to use another install)
set -euo pipefail
RRX=${RRX:-.venv/bin/rrx}
OUT=${1:-outputs/results/$(date +%Y-%m-%d_%H-%M-%S)}
quiet="trainer.progress=false"
stamp() { echo "[$(date +%T)] $*"; }

stamp "synthetic: ResNet-18, 5 epochs, 64 px, challenge=all"
syn="experiment=demo challenge=all trainer.val_fraction=0.1 $quiet"
$RRX train -m $syn method=standard,rrda hydra.sweep.dir="$OUT/synthetic/standard"
# At lr 0.05 from scratch, ResNet-18's RRR penalty starts near 34 (thesis lambdas 1e1..1e3 diverge here)
$RRX train -m $syn method=rrr method.lam=0.1,1 hydra.sweep.dir="$OUT/synthetic/rrr"
$RRX train -m $syn method=gradmask method.lam=1e-4,1e-3 hydra.sweep.dir="$OUT/synthetic/gradmask"
$RRX train -m $syn method=actdiff,actdiff_rrda method.lam=1,4 hydra.sweep.dir="$OUT/synthetic/actdiff"
$RRX report runs="$OUT/synthetic" hydra.run.dir="$OUT/synthetic/report"

stamp "Table 10: SmallCNN on Decoy and Color digits, 10 epochs; RRR lambda 10"
digits="model=small_cnn model.width=32 trainer.epochs=10 trainer.batch_size=64 optimizer.lr=0.01 challenge=original method.lam=10 $quiet"
$RRX train -m $digits dataset=decoy_mnist,color_mnist method=standard,rrr attack=none,fgsm hydra.sweep.dir="$OUT/digits"
$RRX report runs="$OUT/digits" hydra.run.dir="$OUT/digits/report"

stamp "Table 9: MLP (50, 30) on the toy rules, evaluated under PGD"
OUT="$OUT/toy" bash scripts/thesis_tables.sh table9
stamp "done: $OUT"
