#!/usr/bin/env bash
# The method comparison: synthetic benchmark (every method, small lambda sweep, challenge=all),
# RRR against lambda, RRDA's modes, Table 10 on Decoy/Color digits, Table 11 on textures, Table 9 on the toy rules. Each group ends with `rrx report`.
#   bash scripts/results.sh [output folder] [block ...]   (RRX=<rrx command> to use another install)
# Blocks: synthetic rrr_rrda table10 table11 table9 (default: all, in this order).
set -euo pipefail
RRX=${RRX:-.venv/bin/rrx}
OUT=${1:-outputs/results/$(date +%Y-%m-%d_%H-%M-%S)}
shift || true
blocks=${*:-synthetic rrr_rrda table10 table11 table9}
quiet="trainer.progress=false"
stamp() { echo "[$(date +%T)] $*"; }

synthetic() {
stamp "synthetic: ResNet-18, 5 epochs, 64 px, challenge=all"
syn="experiment=demo challenge=all trainer.val_fraction=0.1 $quiet"
$RRX train -m $syn method=standard,rrda hydra.sweep.dir="$OUT/synthetic/standard"
# At lr 0.05 from scratch, ResNet-18's RRR penalty starts near 34 (thesis lambdas 1e1..1e3 diverge here)
$RRX train -m $syn method=rrr method.lam=0.1,1 hydra.sweep.dir="$OUT/synthetic/rrr"
$RRX train -m $syn method=gradmask method.lam=1e-4,1e-3 hydra.sweep.dir="$OUT/synthetic/gradmask"
$RRX train -m $syn method=actdiff,actdiff_rrda method.lam=1,4 hydra.sweep.dir="$OUT/synthetic/actdiff"
$RRX report runs="$OUT/synthetic" hydra.run.dir="$OUT/synthetic/report"
}

rrr_rrda() {

stamp "RRR against lambda, and RRDA's pairing x fill, SmallCNN on the synthetic benchmark, 2 seeds"
emb="experiment=embedded model=small_cnn lambda_index=0 $quiet"
$RRX train -m $emb challenge=background method=standard seed=0,1 hydra.sweep.dir="$OUT/rrr_curve/standard"
$RRX train -m $emb challenge=background method=rrr method.lam=0.01,0.1,1,10 seed=0,1 hydra.sweep.dir="$OUT/rrr_curve/rrr"
$RRX report runs="$OUT/rrr_curve" select_by=original hydra.run.dir="$OUT/rrr_curve/report"
$RRX train -m $emb challenge=background 'challenge.variations=[original,mixed_same,mixed_rand,mixed_next,only_fg]' method=rrda method.pairing=alg3,matching method.fill=black,tile seed=0,1 hydra.sweep.dir="$OUT/rrda_modes"
$RRX report runs="$OUT/rrda_modes" hydra.run.dir="$OUT/rrda_modes/report"
}

table10() {

stamp "Table 10: the MLP on Decoy and Color digits (experiment=thesis_mnist), 2 seeds, the no-decoy baseline, FGSM eps"
$RRX train -m experiment=thesis_mnist seed=0,1 $quiet hydra.sweep.dir="$OUT/digits/main"
$RRX train -m experiment=thesis_mnist dataset=decoy_mnist dataset.variant=none method=standard attack=none seed=0,1 $quiet hydra.sweep.dir="$OUT/digits/nodecoy"
$RRX train -m experiment=thesis_mnist dataset=color_mnist method=standard attack=fgsm attack.eps=0.03137,0.3 \
  "attack.display_name='FGSM eps \${attack.eps}'" seed=0,1 $quiet hydra.sweep.dir="$OUT/digits/color_eps"
$RRX report runs="$OUT/digits" hydra.run.dir="$OUT/digits/report"
}

table11() {

stamp "Table 11: SmallCNN on the embedded texture task, 2 seeds"
tex="dataset=textures model=small_cnn challenge=patches trainer.epochs=10 optimizer.lr=0.05 seed=0,1 $quiet"
$RRX train -m $tex method=standard attack=none,fgsm hydra.sweep.dir="$OUT/textures/standard"
$RRX train -m $tex method=rrr method.lam=1 attack=none,fgsm hydra.sweep.dir="$OUT/textures/rrr"
$RRX train -m $tex method=cdep method.lam=10 attack=none,fgsm hydra.sweep.dir="$OUT/textures/cdep"
$RRX report runs="$OUT/textures" hydra.run.dir="$OUT/textures/report"
}

table9() {

stamp "Table 9: MLP (50, 30) on the toy rules, evaluated under PGD"
OUT="$OUT/toy" RRX=$RRX bash scripts/thesis_tables.sh table9
}

for block in $blocks; do
  case $block in
    synthetic|rrr_rrda|table10|table11|table9) $block ;;
    *) echo "unknown block $block; known: synthetic rrr_rrda table10 table11 table9" >&2; exit 2 ;;
  esac
done
stamp "done: $OUT"
