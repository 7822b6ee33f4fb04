#!/usr/bin/env bash
# s32f (thirty-second session): v87 (branch exp-v87-early-pa): P_A stored unscaled right after P_A V0_A's issue,
# warpgroup 1's P_A V1_A before B's softmax (A's V1 group freed early), warpgroup 1's next Q K^T gated on warpgroup
# 0's; V87A: the same without the gate. Kernel tests of both, 2 interleaved probe rounds against main and v86ts.
# One call (carry .variants/s32).
set -uo pipefail
T=.variants/s32/trees
C=b128/s4096/h128/q1,b128/s4096/h128/q2,b132/s8192/h128/q2,b64/s4096/h128/q1,b16/s4096/h128/q1,b1/s32768/h128/q1
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s32/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
TESTS="./tests/test_kernel_gpu.py" PROBE_TEST_TIMEOUT=120 PROBE_TIMEOUT=80 ROUNDS=2 timeout -s KILL 330 \
    bash benchmarks/probe_variants.sh "$OUT/p" "$C" $T/main-nocheck $T/V86TS-nocheck $T/V87 $T/V87A > "$OUT/p.log" 2>&1
echo "probe rc=$?"; grep -E "tests rc|FAILED" "$OUT/p.log" | head -8; tail -n 7 "$OUT/p.log"
