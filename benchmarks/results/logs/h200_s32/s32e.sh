#!/usr/bin/env bash
# s32e (thirty-second session): v86's loads. s32d found v86's consumers faster than main's without loads (noload
# twins) and v86 27% slower with them. v86t: an mbarrier a sub-tile (Q K^T starts on a group's first sub-tile while
# the rest land); v86ts: v86t with warpgroup 1 multiplying P_A V1_A before P_B V1_B (A's V1 freed first). Kernel tests
# of both, then 2 interleaved probe rounds against main and v86. One call (carry .variants/s32).
set -uo pipefail
T=.variants/s32/trees
C=b128/s4096/h128/q1,b128/s4096/h128/q2,b132/s8192/h128/q2,b64/s4096/h128/q1,b16/s4096/h128/q1,b1/s32768/h128/q1
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s32/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
TESTS="./tests/test_kernel_gpu.py" PROBE_TEST_TIMEOUT=150 PROBE_TIMEOUT=90 ROUNDS=2 timeout -s KILL 500 \
    bash benchmarks/probe_variants.sh "$OUT/p" "$C" $T/main-nocheck $T/V86-nocheck $T/V86T $T/V86TS > "$OUT/p.log" 2>&1
echo "probe rc=$?"; grep -E "tests rc|FAILED" "$OUT/p.log" | head -8; tail -n 7 "$OUT/p.log"
