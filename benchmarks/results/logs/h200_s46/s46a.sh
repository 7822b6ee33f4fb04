#!/usr/bin/env bash
# s46a (prepared in the forty-fifth session, not run): v145 / v145b (exp-v145-try-wait-hint, exp-v145b-try-wait-hint-100)
# against main, fp8 tests (memcheck included) on both. s44g's SASS counters have 33 SYNCS a warp and block in the
# folded fp8 tile, mostly retries of the consumers' waits for vt_full (~35 polls a block in each waiting warp) and of
# warpgroup 1's wait for P; v143 showed the folded tile's block paying for its MIO instructions. v145: those waits
# pass a suspend-time hint to try_wait (mbar_wait_suspended; SASS: the retry becomes TRYWAIT, NANOSLEEP.SYNCS, PHASECHK),
# 1000 ns (v145) or 100 ns (v145b); a suspended thread resumes when the phase completes, so no wait should get longer
# if NANOSLEEP.SYNCS wakes on the barrier (unverified: if it does not, the 1000 ns build gets much slower, a
# result in itself). 0 spills, no C75xx. Predicted: folded h32 -0.5..-2%, unfolded level..-1%; or V145 +5..+30% if
# the sleep is not woken early. Trees first (here): bash benchmarks/variant_trees.sh .variants/s46/trees
# main:main-nocheck exp-v145-try-wait-hint:V145 exp-v145b-try-wait-hint-100:V145B; copy the cutlass wheel to
# .variants/s46/wheels. Carry .variants/s46.
set -uo pipefail
T=.variants/s46/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s46/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite
C8=b128/s4096/h32/q1,b64/s2048/h16/q2,b128/s1024/h32/q1,b128/s4096/h64/q1,b128/s4096/h128/q1
TESTS=tests/test_kernel_fp8_gpu.py PROBE_ARGS="--kv fp8" PROBE_TEST_TIMEOUT=90 PROBE_TIMEOUT=60 ROUNDS=3 \
    timeout -s KILL 400 bash benchmarks/probe_variants.sh "$OUT/f" "$C8" $T/main-nocheck $T/V145 $T/V145B > "$OUT/f.log" 2>&1
echo "fp8 probe rc=$?"; grep -E "build|tests rc|FAILED|ERROR|Error" "$OUT/f.log" | head; tail -n 5 "$OUT/f.log"
