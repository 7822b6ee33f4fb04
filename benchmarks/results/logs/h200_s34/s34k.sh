#!/usr/bin/env bash
# s34k: v97 (the fp8 column split stages a request's output in its last block's Vt stage and copies whole rows out
# in 16-byte chunks; s34j's trace put the fragments' 4-byte stores at 0.8 µs of each CTA's end) against main
# (c00b35c). No kernel tests (the session's device time): the probe checks each output against the fp32 reference
# (varlen: zero-length requests, the unstaged path; 3 rows: padding rows). Carry .variants/s34.
set -uo pipefail
T=.variants/s34/trees
C=b4/s4096/h16/q1,b1/s32768/h16/q1,b8/s8192/h16/q1,b8/s8192/h16/q1/varlen,b2/s2048/h3/q1,b8/s2048/h8/q2
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s34/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
TESTS=none PROBE_ARGS="--kv fp8" PROBE_TIMEOUT=60 ROUNDS=2 timeout -s KILL 185 bash benchmarks/probe_variants.sh \
    "$OUT/fp8" "$C" $T/main-nocheck $T/V97-probe-checked > "$OUT/fp8.log" 2>&1
echo "fp8 rc=$?"; grep -E "build|CHECK" "$OUT/fp8.log" | head -8; tail -n 7 "$OUT/fp8.log"
