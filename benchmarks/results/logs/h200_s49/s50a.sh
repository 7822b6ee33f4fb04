#!/usr/bin/env bash
# s50a (prepared in the forty-ninth session, not run): landing v153 (3c32027, on main since) where s49h could not: the
# 16-bit and fp8 kernel GPU tests with compute-sanitizer memcheck, issue 9's bf16 grid, and b132 sustained against
# FlashMLA, as s43d landed v133c.
# Predicted: tests pass (s49h: 1247 passed without the memcheck test; the fp8 kernels' SASS is 1f2a046's); grid as
# 7f5022b's but b132/s8192/h128/q2 ~2% faster (~960 µs, ~627 TFLOPS: still under 650) and the h128 rows ~0.7%.
# Carry .peers and .variants/s49 (the cutlass wheel in .variants/s49/wheels). $1: the commit.
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s49/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
timeout -s KILL 240 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_kernel_gpu.py tests/test_kernel_fp8_gpu.py \
    > "$OUT/tests.log" 2>&1
echo "tests rc=$?: $(tail -n 1 "$OUT/tests.log")"; grep -E "^(FAILED|ERROR)" "$OUT/tests.log" | head -5
timeout -s KILL 280 python3 benchmarks/bench_decode.py --issue-grid --peers .peers --card h200 --commit "$1" \
    --out-dir "$OUT/r" > "$OUT/bench.log" 2>&1
echo "bench rc=$?"; sed -n '/Ours vs the best peer/,/Geomean/p' "$OUT"/r/*.md
timeout -s KILL 40 python3 benchmarks/power_probe.py --peers .peers --names mla_backend,flashmla \
    --configs b132/s8192/h128/q2,b128/s4096/h128/q1 --seconds 3 > "$OUT/power.log" 2>&1
echo "power rc=$?"; grep -E '^b[0-9]' "$OUT/power.log"
