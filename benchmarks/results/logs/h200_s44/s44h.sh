#!/usr/bin/env bash
# s44h: v140 (exp-v140-qk-descriptor-offsets) against main (670ca07). s44g's SASS counters: warpgroup 0's Q.K^T issue
# is 480 instructions a warp and block (~13 a wgmma rebuilding both descriptors; 43% of the launch's instructions),
# 15% of all stall samples, mostly "selected" / "wait" / "dispatch" (issue-bound, not throttled by the tensor pipe);
# sgl-kernel's FlashMLA, the same seesaw as vLLM's with ~40% fewer instructions, is ~10% faster. v140: each k-step's
# descriptors as the first ones plus a constant on the low word (desc_plus), ~6 instructions a wgmma, in the 16-bit
# and fp8 64-row kernels; 0 spills, no C75xx. Predicted: 16-bit 128-head rows -1..-4% if the issue is on the path
# (level if the tensor pipe bounds it); fp8 folded h32 -0.5..-1.5%; tests pass. Carry .variants/s44.
set -uo pipefail
T=.variants/s44/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s44/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite
C=b128/s4096/h128/q1,b128/s4096/h128/q2,b16/s4096/h128/q1,b132/s8192/h128/q2,b128/s4096/h64/q1
PROBE_TEST_TIMEOUT=60 PROBE_TIMEOUT=45 ROUNDS=2 timeout -s KILL 150 bash benchmarks/probe_variants.sh "$OUT/p" "$C" \
    $T/main-nocheck $T/V140 > "$OUT/p.log" 2>&1
echo "probe rc=$?"; grep -E "build|tests rc|FAILED|ERROR" "$OUT/p.log" | head; tail -n 6 "$OUT/p.log"
C8=b128/s4096/h32/q1,b64/s2048/h16/q2,b128/s4096/h128/q1
TESTS=tests/test_kernel_fp8_gpu.py PROBE_ARGS="--kv fp8" PROBE_TEST_TIMEOUT=60 PROBE_TIMEOUT=40 ROUNDS=2 \
    timeout -s KILL 100 bash benchmarks/probe_variants.sh "$OUT/f" "$C8" $T/main-nocheck $T/V140 > "$OUT/f.log" 2>&1
echo "fp8 probe rc=$?"; grep -E "tests rc|FAILED|ERROR" "$OUT/f.log" | head; tail -n 4 "$OUT/f.log"
