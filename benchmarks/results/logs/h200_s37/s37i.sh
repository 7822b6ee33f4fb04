#!/usr/bin/env bash
# s37i: two knockouts of the merged 64-row fp8 kernel (main at the commit in the call log), for the next step:
# fp8-halfsoftmax (odd blocks skip the online softmax: the most FlashMLA's seesaw, both warpgroups taking alternate
# blocks' softmax, could save) and fp8-nolow (P8's low part not packed), beside fp8-nosoftmax and fp8-main.
# Trees (here): python3 benchmarks/wide_diagnostics.py . DIR, fp8-{main,nosoftmax,halfsoftmax,nolow}-nocheck moved to
# .variants/s37/wd. Carry .variants/s37.
# Predicted (b128/s4096/h128, 247 us): nosoftmax -14% (s37b); if warpgroup 0's softmax chain sets the pace,
# halfsoftmax about half of that (-7%) and nolow -3..-5%; if they save ~nothing, the pace is set elsewhere (the raw
# stages, power).
set -uo pipefail
W=.variants/s37/wd
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s37/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
TESTS=none PROBE_ARGS="--kv fp8" PROBE_TIMEOUT=60 ROUNDS=1 timeout -s KILL 230 bash benchmarks/probe_variants.sh \
    "$OUT/k" b128/s4096/h128/q1,b128/s4096/h64/q1,b128/s4096/h32/q1 $W/fp8-main-nocheck $W/fp8-nosoftmax-nocheck \
    $W/fp8-halfsoftmax-nocheck $W/fp8-nolow-nocheck > "$OUT/k.log" 2>&1
echo "rc=$?"; tail -n 4 "$OUT/k.log"
