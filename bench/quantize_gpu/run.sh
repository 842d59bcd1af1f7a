#!/usr/bin/env bash
# The whole GPU run of bench/quantize_gpu in one go: installs carried wheels (if any), then run.py all.
#   bash bench/quantize_gpu/run.sh [WHEEL_DIR]            (STEP=accuracy: only the model + accuracy figures;
#                                                          STEP=multi: split/offloaded vs one-GPU, multi.py)
# Needs: python3 with torch (CUDA) + transformers; nvidia-modelopt 0.47 and its missing deps either
# installed or as wheels in WHEEL_DIR. Writes results.json and table.md to $OUT (default /tmp/quantize_gpu_out).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
whl=${1:-}
if [[ -n "$whl" ]]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$whl"/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export TORCH_EXTENSIONS_DIR=${TORCH_EXTENSIONS_DIR:-/tmp/trtbuild-torch-extensions}
python3 -c 'import torch, transformers, modelopt; print("torch", torch.__version__, "transformers", transformers.__version__, "modelopt", modelopt.__version__, "cuda", torch.cuda.is_available())'
exec python3 "$here/run.py" "${STEP:-all}" --work "${WORK:-/tmp/quantize_gpu_work}" --out "${OUT:-/tmp/quantize_gpu_out}"
