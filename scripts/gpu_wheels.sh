#!/usr/bin/env bash
# Wheels of what the lent GPU machine lacks, for scripts/gpu_check.py to install there without a network:
#
#     bash scripts/gpu_wheels.sh [folder]        # default: gpu_wheels/ in the checkout (ignored by git)
#
# The GPU machine has Python 3.12 with torch, torchvision, timm, Lightning, transformers, pandas, matplotlib,
# scikit-learn, pyarrow and pytest, but not hydra-core, omegaconf, antlr4-python3-runtime or captum. This downloads
# their wheels for CPython 3.12 ($GPU_PYTHON_VERSION) on manylinux x86_64, each without its dependencies (captum's, hydra's `packaging`,
# are there already), plus PyYAML (omegaconf needs it; present there with Lightning and transformers, shipped in
# case). antlr4-python3-runtime is pinned by hydra-core 1.3 and omegaconf 2.3 to 4.9.*, of which PyPI has only the
# 4.9.3 source distribution: it is pure Python, so its wheel (py3-none-any) is built here. Writes COMMIT (the
# checkout's commit, for a copy without .git) and prints the folder's and the checkout's sizes: together they
# travel to the GPU machine, under 64 MiB.
#
# There: python scripts/gpu_check.py --out <folder> --wheels gpu_wheels  (it installs what is missing with
# pip install --no-index --no-deps --target, and puts the target on the path).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
folder=${1:-$root/gpu_wheels}
python=${PYTHON:-python3}           # runs pip here; any Python will do, the wheels are for:
version=${GPU_PYTHON_VERSION:-3.12}  # the GPU machine's Python (the tests ask for their own, to install them)
pip=("$python" -m pip --disable-pip-version-check)
mkdir -p "$folder"
rm -f "$folder"/*.whl

"${pip[@]}" download --quiet --only-binary=:all: --python-version "$version" --implementation cp \
    --platform manylinux2014_x86_64 --no-deps -d "$folder" \
    "hydra-core>=1.3,<1.4" "omegaconf>=2.3,<2.4" "captum>=0.7" "PyYAML>=5.1"
"${pip[@]}" wheel --quiet --no-deps -w "$folder" "antlr4-python3-runtime==4.9.3"

git -C "$root" describe --always --dirty --abbrev=12 > "$folder/COMMIT" 2>/dev/null || echo unknown > "$folder/COMMIT"
ls -1 "$folder"
wheels=$(du -sb "$folder" | cut -f1)
checkout=$(git -C "$root" ls-files -z --cached --others --exclude-standard | (cd "$root" && xargs -0 du -cb 2>/dev/null) | tail -1 | cut -f1)
total=$((wheels + checkout))
awk -v w="$wheels" -v c="$checkout" 'BEGIN { m = 1048576; printf "wheels %.1f MiB + checkout %.1f MiB = %.1f MiB (limit 64 MiB)\n", w / m, c / m, (w + c) / m }'
if [ "$total" -ge $((64 * 1048576)) ]; then
    echo "gpu_wheels: over 64 MiB" >&2
    exit 1
fi
