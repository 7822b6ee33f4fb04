#!/usr/bin/env bash
# s26a (prepared in the twenty-fifth session; trees by .variants/s26prep.sh): the seesaw's next call.
# 1. v80d's kernel tests, then main / v80c / v80d / v80f (v80c + L2 prefetch of the next pair), 2 rounds;
# 2. the noload twins of main and v80c, 2 rounds: loads or schedule?
# 3. the phase traces of main's consumers and v80c's on the TMA kernel (one round, MLA_TRACE_PHASES=1).
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .dev/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
C=b128/s4096/h128/q1,b128/s4096/h128/q2,b16/s4096/h128/q1
T=.variants/trees
mkdir -p "$OUT/p" "$OUT/n" "$OUT/t"
PROBE_TEST_TIMEOUT=90 PROBE_TIMEOUT=60 ROUNDS=2 timeout -s KILL 360 bash benchmarks/probe_variants.sh "$OUT/p" "$C" \
    $T/main-nocheck $T/V80C-nocheck $T/V80D $T/V80F-nocheck > "$OUT/p.log" 2>&1
echo "probe rc=$?"; grep -E "tests rc|FAILED" "$OUT/p.log" | head -3; tail -n 3 "$OUT/p.log"
PROBE_TIMEOUT=60 ROUNDS=2 timeout -s KILL 150 bash benchmarks/probe_variants.sh "$OUT/n" "$C" \
    $T/main-noload-nocheck $T/V80C-noload-nocheck > "$OUT/n.log" 2>&1
echo "noload rc=$?"; tail -n 3 "$OUT/n.log"
MLA_TRACE_PHASES=1 PROBE_TIMEOUT=60 ROUNDS=1 timeout -s KILL 120 bash benchmarks/probe_variants.sh "$OUT/t" \
    b128/s4096/h128/q1,b16/s4096/h128/q1 $T/MAIN-trace-nocheck $T/V80C-trace-nocheck > "$OUT/t.log" 2>&1
echo "trace rc=$?"; for f in /tmp/probe_variants.*/probe_*trace*_1.log; do echo "== $f"; grep -E "^b|trace wg" "$f"; done
