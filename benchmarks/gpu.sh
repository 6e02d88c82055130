#!/usr/bin/env bash
# Every GPU figure in one run of at most 8 minutes, on a machine without network (it builds the
# full-size random models there): replace latency (default and fast presets, warm), the naive /
# promptpaint ratio, photos per minute at --batch-size 1, 4 and 8, float16 against bfloat16,
# --compile's warm-up and gain, peak GPU memory. See benchmarks/gpu.py and docs/benchmarks.md.
#
#   bash benchmarks/gpu.sh                                      # on the GPU machine
#   bash benchmarks/gpu.sh --device cpu --models tiny --skip compile --json /tmp/gpu.json   # CPU check
#
# Needs the project's Python environment (torch with CUDA, diffusers, transformers, peft): set
# PYTHON to its interpreter if `python` is another one. The JSON goes to --json, else to
# $OUT/gpu.json when $OUT is set (the device tool's folder that comes back), else ./gpu.json.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 HF_HUB_DISABLE_PROGRESS_BARS=1 TRANSFORMERS_VERBOSITY=error PYTHONWARNINGS=ignore

args=("$@")
if [[ " $* " != *" --json "* ]]; then
  args+=(--json "${OUT:-.}/gpu.json")
fi
device=cuda
budget=450
for ((i = 0; i < ${#args[@]}; i++)); do
  [[ ${args[i]} == --device ]] && device=${args[i + 1]}
  [[ ${args[i]} == --budget ]] && budget=${args[i + 1]%.*}
done

# One line, before any slow work, if the environment cannot run it.
"$PYTHON" - "$device" <<'PY'
import importlib.util, sys
missing = [m for m in ("torch", "diffusers", "transformers", "peft", "onnxruntime", "skimage") if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"gpu.sh: missing Python packages: {', '.join(missing)} (install the project with its test extras)")
import torch
if sys.argv[1] == "cuda" and not torch.cuda.is_available():
    sys.exit("gpu.sh: no CUDA GPU is visible to torch; pass --device cpu for the CPU check")
PY

# The Python side keeps to its budget (450 s by default: 8 minutes in all); this is the backstop.
exec timeout $((budget + 30)) "$PYTHON" -m benchmarks.gpu "${args[@]}"
