#!/usr/bin/env bash
# s37f: the landing candidate ff9af10 (branch land-wide-fp8: v105/v105b as the fp8 kernel for 17+ rows; the widening
# 64-row producer and the 17-32-row split removed; SASS checked here: the 64-row fp8 kernel is v105c's instruction for
# instruction, the 16-bit kernels and the fp8 swap-AB kernels main's). GPU tests (fp8 in full with memcheck, 16-bit
# without the sanitizer); row halves against the 64-row fp8 kernel at 17-32 rows of up to 64 requests (the plan
# without halves: --parts 132), since FP8_ROW_HALVES_MAX_BATCH was measured against the removed row split; and the
# rows over 32 against FlashMLA fp8.
# Predicted: tests pass. Halves vs 64-row: the 64-row kernel wins where the row split did (long contexts at 32-64
# requests: b64/s8192 128 -> ~124 vs halves 138) and at b64/s2048/h16/q2 (40.8 vs 44.0, s37a); halves keep b1-b16.
set -uo pipefail
T=.variants/s37/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s37/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
cd $T/L
export MLA_BACKEND_CACHE=/tmp/ext-L PYTHONPATH=/tmp/devsite:$PWD
python3 -c "from mla_backend import _build; _build.load_extension()" > "$OUT/build.log" 2>&1; echo "build rc=$?"
timeout -s KILL 200 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_kernel_fp8_gpu.py \
    > "$OUT/fp8_tests.log" 2>&1; echo "fp8 tests rc=$?: $(tail -n 1 "$OUT/fp8_tests.log")"
timeout -s KILL 150 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_kernel_gpu.py -k "not sanitizer" \
    > "$OUT/kernel_tests.log" 2>&1; echo "16-bit tests rc=$?: $(tail -n 1 "$OUT/kernel_tests.log")"
C=b1/s32768/h32/q1,b4/s4096/h32/q1,b8/s8192/h32/q1,b16/s4096/h32/q1,b32/s1024/h32/q1,b32/s4096/h32/q1
C=$C,b32/s8192/h32/q1,b48/s2048/h32/q1,b64/s1024/h32/q1,b64/s2048/h16/q2,b64/s4096/h32/q1,b64/s8192/h32/q1
for r in 1 2; do
  timeout -s KILL 60 python3 benchmarks/probe_decode.py --configs $C --kv fp8 > "$OUT/halves_$r.log" 2>&1
  echo "halves $r rc=$?"
  timeout -s KILL 60 python3 benchmarks/probe_decode.py --configs $C --kv fp8 --parts 132 > "$OUT/wide_$r.log" 2>&1
  echo "wide $r rc=$?"
done
grep -hE "^b[0-9]" "$OUT"/halves_1.log | head -3
B=b128/s4096/h64/q1,b128/s4096/h128/q1,b16/s4096/h128/q1,b1/s32768/h128/q1,b64/s2048/h64/q2,b64/s4096/h64/q2
timeout -s KILL 150 python3 benchmarks/bench_decode.py --configs $B --kv fp8 --peers ../../../../.peers \
    --card h200_rows_over_32 --commit ff9af10 --out-dir "$OUT/bench" > "$OUT/bench.log" 2>&1
echo "bench rc=$?"; grep -E "^b|mla_backend |flashmla_fp8 |geomean" "$OUT/bench.log"
