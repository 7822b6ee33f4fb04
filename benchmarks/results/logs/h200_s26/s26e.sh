#!/usr/bin/env bash
# s26e: the 64-row fp8 kernel (branch exp-v82-fp8-wide): its GPU tests, then fp8 vs bf16 probe times.
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
python3 -c 'from mla_backend import _build; _build.load_extension(); print("extension ok")' > "$OUT/build.log" 2>&1
tail -1 "$OUT/build.log"
timeout -s KILL 110 python3 -m pytest -q -x -m gpu -p no:cacheprovider tests/test_kernel_fp8_gpu.py \
    -k "beyond_32 or fp16_queries or unit_variance or nan_in or zero_length or all_zero or graph or rows_without" \
    > "$OUT/tests.log" 2>&1
echo "tests rc=$?"; tail -3 "$OUT/tests.log"
C=b128/s4096/h64/q1,b128/s4096/h128/q1,b64/s2048/h64/q2,b1/s32768/h128/q1
timeout -s KILL 35 python3 benchmarks/probe_decode.py --configs $C --kv fp8 > "$OUT/probe_fp8.log" 2>&1
timeout -s KILL 35 python3 benchmarks/probe_decode.py --configs $C > "$OUT/probe_bf16.log" 2>&1
grep -E "^b" "$OUT/probe_fp8.log" "$OUT/probe_bf16.log"
