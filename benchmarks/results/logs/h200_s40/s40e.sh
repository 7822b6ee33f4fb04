#!/usr/bin/env bash
# s40e: where the folded 64-row fp8 tile's block goes, by knockouts on main (abe012b's kernels), outputs wrong by
# design: benchmarks/wide_diagnostics.py's fp8-* copies (Q.K^T off, both P.V off, warpgroup 1's P.V off, the Vt
# stores off, the cp.async copies off, the unfolded softmax off) plus fp8-nofoldedsoftmax (the folded softmax off:
# P8's parts raw score bits, rescale 1). b128/s4096/h32 and b64/s2048/h16/q2 run folded, b128/s4096/h64 unfolded.
# Predicted (h32, from s39d/s39g and v119): notranspose -4..-7%, noload -15..-25% (the DRAM time goes with it),
# nofoldedsoftmax -10..-20%, noqk -5..-10%, nopv1 -1..-3%; h64: nosoftmax -25..-35% (s37), notranspose -0.5..-1%.
# Setup: python benchmarks/wide_diagnostics.py . .variants/s40/wd, then only its fp8-* trees kept, each without
# benchmarks/results, docs, configs, integration_tests, PERF_NOTES (carry .variants/s40).
set -uo pipefail
W=.variants/s40/wd
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s40/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
C=b128/s4096/h32/q1,b64/s2048/h16/q2,b128/s4096/h64/q1
TESTS=none PROBE_ARGS="--kv fp8" PROBE_TIMEOUT=80 ROUNDS=2 timeout -s KILL 540 bash benchmarks/probe_variants.sh \
    "$OUT/p" "$C" $W/fp8-main-nocheck $W/fp8-notranspose-nocheck $W/fp8-noload-nocheck $W/fp8-nofoldedsoftmax-nocheck \
    $W/fp8-noqk-nocheck $W/fp8-nopv-nocheck $W/fp8-nopv1-nocheck $W/fp8-nosoftmax-nocheck > "$OUT/p.log" 2>&1
echo "rc=$?"; grep -E "build" "$OUT/p.log" | head -10; tail -n 4 "$OUT/p.log"
