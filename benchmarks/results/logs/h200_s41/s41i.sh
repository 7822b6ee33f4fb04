#!/usr/bin/env bash
# s41i: LAND of v125 (the 16-bit 64-row kernel's padding rows multiply zeros) on main: every 16-bit kernel GPU test,
# compute-sanitizer memcheck included (s41h ran them without the sanitizer test: 1247 passed). Predicted: all pass.
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s41/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD MLA_BACKEND_CACHE=/tmp/ext-land
timeout 300 python3 -c "from mla_backend import _build; _build.load_extension()" > "$OUT/build.log" 2>&1
echo "build rc=$?"
timeout -s KILL 330 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_kernel_gpu.py > "$OUT/tests.log" 2>&1
echo "tests rc=$?: $(tail -n 1 "$OUT/tests.log")"; grep -E "^(FAILED|ERROR)" "$OUT/tests.log" | head
