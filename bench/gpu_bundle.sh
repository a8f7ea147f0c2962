#!/usr/bin/env bash
# Prepare what bench/gpu_check.sh needs on a GPU machine that reaches no package registry (the
# project's lent H200: Python 3.12 with torch, transformers, onnxruntime and pyarrow, nothing
# else of ours), in two folders of this checkout that git ignores:
#   .whl/     the wheels of the project's missing packages, for CPython 3.12 on x86-64 Linux,
#             without their dependencies that the machine already has (33 MB);
#   .gpuimg/  the first N Harm-C validation memes by name (default 140, about 25 MB).
# Together they stay under the 64 MiB a device call carries. Then, on the machine:
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
#   PYTHONPATH=/tmp/site PIP_NO_INDEX=1 PYTHON=python3 IMAGES=.gpuimg REPEAT=5 bash bench/gpu_check.sh
# Not carried (too big): ray (79 MB) and onnxruntime-gpu; gpu_check.sh says so and skips them.
#
#   bash bench/gpu_bundle.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.." || exit
N=${1:-140}
MEMES=${MEMES:-../shared/data/harmeme-c-val/images}
EXCLUDE=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$EXCLUDE")"
for dir in /.whl/ /.gpuimg/; do
  grep -qxF "$dir" "$EXCLUDE" 2>/dev/null || echo "$dir" >>"$EXCLUDE"
done

rm -rf .whl .gpuimg
mkdir -p .whl .gpuimg
PLATFORMS=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 \
  manylinux2014_x86_64 manylinux1_x86_64 any; do
  PLATFORMS+=(--platform "$p")
done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${PLATFORMS[@]}" -d .whl open_clip_torch ftfy wcwidth rapidocr flask waitress flask-cors pebble \
  itsdangerous blinker pyclipper shapely omegaconf antlr4-python3-runtime colorlog
python3 -m pip wheel -q --no-deps -w .whl wordninja  # published as a source archive only

find "$MEMES" -maxdepth 1 -type f \( -name '*.png' -o -name '*.jpg' -o -name '*.jpeg' \) \
  | sort | head -n "$N" | while read -r f; do cp "$f" .gpuimg/; done
echo "wheels: $(du -sh .whl | cut -f1), memes: $(find .gpuimg -type f | wc -l) ($(du -sh .gpuimg | cut -f1))"
