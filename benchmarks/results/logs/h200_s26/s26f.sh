#!/usr/bin/env bash
# s26f: every fp8 GPU test (memcheck included) on the branch exp-v82-fp8-wide.
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
timeout -s KILL 200 python3 -m pytest -q -rs -m gpu -p no:cacheprovider tests/test_kernel_fp8_gpu.py > "$OUT/tests.log" 2>&1
echo "tests rc=$?"; tail -4 "$OUT/tests.log"
