#!/usr/bin/env bash
# s37a (prepared in the thirty-sixth session, not run): v105, an fp8 cache's 17+ query rows on a 64-row tile of fp8
# wgmma with the rows in M (`next/v105.patch`; PERF_NOTES.md, "Where the thirty-sixth session leaves it"), and
# v105b on it (`next/v105b.patch`: warpgroup 0's P.V left in flight under the next block's Q.K^T, setmaxnreg per
# warpgroup). Compiled there: 26 QGMMA, 3 WARPGROUP.DEPBAR each (no serialization); v105 8 bytes spilled, v105b none.
# Before the call, here:
#   git checkout -b exp-v105-fp8-wide-qgmma main && git am benchmarks/results/logs/h200_s36/next/v105.patch
#   git branch exp-v105a-fp8-wide-qgmma && git am benchmarks/results/logs/h200_s36/next/v105b.patch
#   git checkout main && bash benchmarks/variant_trees.sh .variants/s37/trees main:main-nocheck \
#       exp-v105a-fp8-wide-qgmma:V105 exp-v105-fp8-wide-qgmma:V105B
#   mkdir -p .variants/s37/wheels && pip download --no-deps nvidia-cutlass==4.2.0.0 -d .variants/s37/wheels
# (carry .variants/s37). V105's fp8 GPU tests first (memcheck included; a hang is killed after 240 s): if they fail,
# the likely culprits are the A-register order of P8 against the Vt rows (VtOrder::kWideP: finite but wrong
# outputs), Q8's layout under the m64n64k32 descriptors (garbage), or a barrier count (a hang).
# Predicted (µs, main -> V105; V105B a further -10..-20% where the block chain binds, by the budget's ~2,250 ->
# ~1,750 cycles a block): b128/s4096/h32 126 -> 80-95 (1.2x FlashMLA fp8 needs 94.6); b96/s2048/h16/q2 -25..-35%;
# b64/s2048/h16/q2 with --parts 132 (the row split's plan; main's default there is row halves, 44.0) 46.5 -> 30-38;
# b128/s4096/h64 163 -> 85-100 (bf16 154); b128/s4096/h128 318 -> 140-170 (bf16 250); b16/s4096/h128 53 -> 35-42;
# b1/s32768/h128 35 -> 26-31; b32/s1024/h32 (row halves: another kernel) and b128/s4096/h16 unchanged.
set -uo pipefail
T=.variants/s37/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s37/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
C=b128/s4096/h32/q1,b96/s2048/h16/q2,b128/s4096/h64/q1,b128/s4096/h128/q1,b16/s4096/h128/q1,b1/s32768/h128/q1
C=$C,b64/s2048/h64/q2,b32/s1024/h32/q1,b128/s4096/h16/q1
TESTS="tests/test_kernel_fp8_gpu.py" PROBE_TEST_TIMEOUT=240 PROBE_ARGS="--kv fp8" PROBE_TIMEOUT=100 ROUNDS=2 \
    timeout -s KILL 500 bash benchmarks/probe_variants.sh "$OUT/fp8" "$C" $T/main-nocheck $T/V105 $T/V105B \
    > "$OUT/fp8.log" 2>&1
echo "fp8 rc=$?"; tail -n 14 "$OUT/fp8.log"
TESTS=none PROBE_ARGS="--kv fp8 --parts 132" PROBE_TIMEOUT=30 ROUNDS=1 timeout -s KILL 80 bash \
    benchmarks/probe_variants.sh "$OUT/parts132" b64/s2048/h16/q2,b64/s8192/h32/q1 $T/main-nocheck $T/V105 $T/V105B \
    > "$OUT/parts132.log" 2>&1
echo "parts132 rc=$?"; tail -n 4 "$OUT/parts132.log"
