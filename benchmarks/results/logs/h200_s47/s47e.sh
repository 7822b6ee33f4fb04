#!/usr/bin/env bash
# s47e: where the swapped folded tile's time goes (s47d: V147Z, no slow block at all, matches D4 at h32 (0.936x main)
# but is +2.4..7.5% on the short-piece rows, where D4 is -2.5..-3.3%; V147N - V147Z = 2.6 us at h32 from one slow
# block per piece). Diagnostics, outputs unchecked: V147A (branch exp-v147a-always-slow: every block takes the slow
# path; (V147A - V147Z) / blocks a CTA = one slow block's cost) and V147ZE (exp-v147ze-no-end-stats: V147Z without the
# column statistics at a request's end: their cost per piece). Predicted: a slow block ~0.5 us (~900 cycles: 24
# shuffles, a barrier, 32 loads, a second pass of 16 exponentials and stores, a barrier); V147ZE - V147Z < 0.2 us.
# Trees (here): bash benchmarks/variant_trees.sh .variants/s47/trees exp-v147a-always-slow:V147A-nocheck
# exp-v147ze-no-end-stats:V147ZE-nocheck (V147Z-nocheck from s47d). Carry .variants/s47.
set -uo pipefail
T=.variants/s47/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s47/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite
C8=b128/s4096/h32/q1,b64/s2048/h16/q2,b128/s1024/h32/q1,b8/s8192/h32/q1
TESTS=none PROBE_ARGS="--kv fp8" PROBE_TIMEOUT=60 ROUNDS=2 timeout -s KILL 400 bash benchmarks/probe_variants.sh \
    "$OUT/f" "$C8" $T/main-nocheck $T/V147Z-nocheck $T/V147A-nocheck $T/V147ZE-nocheck > "$OUT/f.log" 2>&1
echo "diag probe rc=$?"; grep -E "build|FAILED|ERROR|Error" "$OUT/f.log" | head; tail -n 5 "$OUT/f.log"
