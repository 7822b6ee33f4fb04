#!/usr/bin/env bash
# s48b: v148 after s48a (a null B past a split piece now masks every key: s48a's one failure, lse +0.015 at
# b1/s65/h128, was the token of the request's next block counted with K = 0; and the next A's first Q.K^T group is
# issued under P_B V_B, as FlashMLA does, instead of after its wait). 16-bit GPU tests on V148, then main, V148 and
# both noload twins (the TMA issue arrives with 0 bytes: outputs wrong by design) in 2 interleaved rounds.
# Predicted: tests pass; V148 a little faster than s48a's +7.5..+12% (the Q.K^T no longer waits for P_B V_B: ~-2%);
# the noload twins say whether the seesaw's consumers beat main's (v86-noload did by 3%).
# Trees: s48a's, V148 rebuilt at the fix, the noload copies edited by hand (issue_kv_group / issue_group).
set -uo pipefail
T=.variants/s48/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s48/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite
C=b128/s4096/h128/q1,b128/s4096/h128/q2,b132/s8192/h128/q2,b16/s4096/h128/q1,b1/s32768/h128/q1
PROBE_TEST_TIMEOUT=300 PROBE_TIMEOUT=90 ROUNDS=2 \
    timeout -s KILL 560 bash benchmarks/probe_variants.sh "$OUT/b" "$C" $T/main-nocheck $T/V148 $T/main-noload-nocheck \
    $T/V148-noload-nocheck > "$OUT/b.log" 2>&1
echo "probe rc=$?"; grep -E "build|tests rc|passed|failed|FAILED|ERROR|Error" "$OUT/b.log" | head -20; tail -n 8 "$OUT/b.log"
