#!/usr/bin/env bash
# The GPU check of issue 11: on a CUDA machine, in under 8 minutes, print
#   - the encoder ceiling with ViT-L-14-336 in fp16 (random weights);
#   - `simclip score` throughput (local engine) with CPU OCR and with GPU OCR, and the Ray engine;
#   - the server's throughput (bench/bench_server.py's measure_server);
#   - the seed code's stack for the peer ratio: Hugging Face transformers' CLIPModel with
#     ViT-L/14-336's shapes (random weights), fp32, one meme at a time, image + text features.
#
#   bash bench/gpu_check.sh              # on the GPU machine
#   bash bench/gpu_check.sh --dry-run    # anywhere: CPU, tiny backbone, tiny peer, 16 memes
#
# Environment:
#   PYTHON   the interpreter (default: .venv/bin/python if there, else python3)
#   IMAGES   the memes (default: ../shared/data/harmeme-c-val/images)
#   WHEELS   a folder of wheels to install first, offline (a machine without PyPI), e.g. made with
#            pip download -d wheels open_clip_torch rapidocr wordninja pytesseract flask waitress \
#              flask-cors 'ray[data]' pyarrow tqdm requests transformers onnxruntime-gpu
#   REPEAT   copies of each meme (default 4 on GPU: 708 pictures, enough to time a batch encoder)
# Without WHEELS and with PyPI reachable, what is missing is pip-installed: the project with
# its server and scale extras into $PYTHON's environment, and transformers and onnxruntime-gpu
# into separate folders used only by their own step (onnxruntime-gpu shadows onnxruntime there;
# transformers' folder comes after the environment's own packages, PEER_SITE in score_bench.py).
# A step whose packages cannot be had says so.
set -uo pipefail
cd "$(dirname "$0")/.." || exit
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1

DRY=0
[ "${1:-}" = "--dry-run" ] && DRY=1
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
IMAGES=${IMAGES:-../shared/data/harmeme-c-val/images}
SITE=$(mktemp -d)
trap 'rm -rf "$SITE"' EXIT
START=$(date +%s)
BUDGET=450  # seconds for the steps; the whole script stays under 8 minutes

if [ "$DRY" = 1 ]; then
  RUN=(--device cpu --model simclip-tiny -n 16 --repeat 1 --peer-size tiny --clients 4 --rounds 1)
  OCR_DEVICE=cpu
else
  RUN=(--device cuda --model ViT-L-14-336 --repeat "${REPEAT:-4}" --batch-size 64 --clients 32 --rounds 1)
  OCR_DEVICE=cuda
fi

left() { echo $((BUDGET - ($(date +%s) - START))); }
say() { printf '\n== %s (%ss left)\n' "$*" "$(left)"; }

say "environment"
"$PYTHON" - <<'EOF'
import os, platform, torch
print(f"python {platform.python_version()}, torch {torch.__version__}, cores {os.cpu_count()}")
print("GPU:", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")
EOF

say "install what is missing"
if [ -n "${WHEELS:-}" ]; then
  "$PYTHON" -m pip install -q --no-index --find-links "$WHEELS" --no-deps -e . || true
  "$PYTHON" -m pip install -q --no-index --find-links "$WHEELS" open_clip_torch rapidocr \
    wordninja pytesseract flask waitress flask-cors 'ray[data]' pyarrow tqdm requests || true
  "$PYTHON" -m pip install -q --no-index --find-links "$WHEELS" --target "$SITE/peer" \
    transformers || true
  "$PYTHON" -m pip install -q --no-index --find-links "$WHEELS" --target "$SITE/ortgpu" \
    --no-deps onnxruntime-gpu || true
elif ! "$PYTHON" -c "import simclip_score, open_clip, ray.data, flask" 2>/dev/null; then
  timeout 240 "$PYTHON" -m pip install -q -e '.[server,scale]' || echo "pip install failed"
fi
"$PYTHON" -c "import transformers" 2>/dev/null || [ -d "$SITE/peer/transformers" ] \
  || timeout 180 "$PYTHON" -m pip install -q --target "$SITE/peer" transformers \
  || echo "transformers: not installable here"

STEPS=ocr,encoder,local,ray,server
if ! "$PYTHON" -c "import ray.data" 2>/dev/null; then
  echo "Ray: not installed here (its wheel is over the device tool's 64 MiB): Ray step skipped"
  STEPS=ocr,encoder,local,server
fi
say "encoder ceiling, OCR on the CPU: score (local engine), Ray engine, server"
timeout "$(left)" "$PYTHON" bench/score_bench.py "${RUN[@]}" --images "$IMAGES" \
  --steps "$STEPS" 2>&1 | grep -v -E "^(INFO|WARNING|\(|\[)|^[0-9-]+ [0-9:,]+\s+INFO"

say "OCR on the GPU (rapidocr on onnxruntime-gpu's CUDAExecutionProvider): score (local engine)"
if [ "$OCR_DEVICE" = cpu ]; then
  "$PYTHON" - <<'EOF'
from simclip_score.ocr import build_ocr_engine
try:
    build_ocr_engine("rapidocr:device=cuda")
    print("CUDA OCR: available")
except RuntimeError as e:
    print(f"dry run: CUDA OCR refused as expected: {e}")
EOF
else
  ORT_PATH=""
  if ! "$PYTHON" -c "import onnxruntime as o; assert 'CUDAExecutionProvider' in o.get_available_providers()" 2>/dev/null; then
    [ -d "$SITE/ortgpu/onnxruntime" ] || timeout 120 "$PYTHON" -m pip install -q --target "$SITE/ortgpu" \
      --no-deps onnxruntime-gpu || echo "onnxruntime-gpu: not installable here"
    ORT_PATH="$SITE/ortgpu"
  fi
  PYTHONPATH="$ORT_PATH${PYTHONPATH:+:$PYTHONPATH}" timeout "$(left)" "$PYTHON" bench/score_bench.py \
    "${RUN[@]}" --images "$IMAGES" --ocr-device cuda --steps ocr,local 2>&1 \
    | grep -v -E "^(INFO|WARNING|\(|\[)|^[0-9-]+ [0-9:,]+\s+INFO" \
    || echo "GPU OCR step failed (see above)"
fi

say "peer: transformers CLIPModel, ViT-L/14-336 shapes, fp32, one meme at a time"
PEER_SITE="$SITE/peer" timeout "$(left)" "$PYTHON" bench/score_bench.py \
  "${RUN[@]}" --images "$IMAGES" --steps encoder,peer 2>&1 \
  | grep -v -E "^(INFO|WARNING|\(|\[)|^[0-9-]+ [0-9:,]+\s+INFO" || echo "peer step failed (see above)"

echo
echo "gpu_check: done in $(( $(date +%s) - START )) s"
