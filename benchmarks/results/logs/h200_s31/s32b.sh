#!/usr/bin/env bash
# s32b (prepared in the thirty-first session, not yet run): issue 9's compute-bound rows, the seesaw with part of Q
# in registers. Trees (`bash benchmarks/variant_trees.sh .variants/trees main:main-nocheck 8fb5205:V80D-nocheck
# exp-v85-seesaw-rs-q:V85 exp-v85b-seesaw-rs-q2:V85B`, done; "-nocheck": probe_variants.sh runs no tests there: main's
# kernels passed theirs this session as v83d, v80d's in s26a; the probe checks every output against the fp32
# reference): main (10c837c), V80D (v80d's seesaw merged onto it),
# V85 (+ Q's RoPE sub-tile in registers, RS for 4 of Q.K^T's 36 k-steps), V85B (+ two sub-tiles, 8 k-steps; an
# 8-byte spill). Kernel GPU tests of V85 and V85B (bf16/fp16 file, memcheck included), then 2 interleaved probe rounds
# on the rows the seesaw (the TMA kernel, > 64 rows) runs. Carry .variants; ~6 min.
# Predicted (PERF_NOTES, thirty-first session): V80D +6-11% over main as in s26a; V85 0-1% under V80D, V85B 1-2%
# under V80D (the contention the twenty-sixth session's trace measured shrinks by 4/72 and 8/72 of Q.K^T's
# shared-memory operand bytes); all still behind main. A bigger gain would mean Q's reads were the bottleneck.
C=b132/s8192/h128/q2,b128/s4096/h128/q1,b128/s4096/h128/q2,b32/s8192/h128/q2,b64/s4096/h128/q1,\
b16/s4096/h128/q1,b1/s32768/h128/q1,b8/s1024/h128/q1
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
# "./tests/..." is not probe_variants.sh's default spelling, so its memcheck test is not filtered out
TESTS="./tests/test_kernel_gpu.py" PROBE_TEST_TIMEOUT=240 PROBE_TIMEOUT=90 ROUNDS=2 \
    timeout -s KILL 560 bash benchmarks/probe_variants.sh "$OUT/p" "$C" .variants/trees/main-nocheck \
    .variants/trees/V80D-nocheck .variants/trees/V85 .variants/trees/V85B > "$OUT/p.log" 2>&1
echo "probe rc=$?"; grep -E "tests rc|FAILED" "$OUT/p.log" | head -8; tail -n 12 "$OUT/p.log"
