#!/usr/bin/env bash
# s39d: knockouts of the fp8 producer's transpose (its 16 shared loads and 16 stores a thread and block off, the byte
# permutes dead with them; waits and arrivals kept; outputs wrong by design) on main and on v113b, to see how much of
# a block the producer's transpose holds the consumers back. Trees: main-nocheck, V113B-nocheck and their -KOT copies
# (kernels/mla_fp8_stages.cuh: `rows[j][...] = at` for the ld.shared, `if (vt == 0xffffffffu)` before each
# store_shared_16). Carry .variants/s39.
# Predicted: if the producer's ~90%-busy chain (s39a: 9% of its samples on barrier waits) paces the block, KOT is
# -15..-30%; if the consumers do, 0..-5% (s37b's store-only knockout: -3%).
set -uo pipefail
T=.variants/s39/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s39/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
C=b128/s4096/h32/q1,b64/s2048/h16/q2,b128/s4096/h64/q1,b128/s4096/h128/q1
PROBE_ARGS="--kv fp8" PROBE_TIMEOUT=80 ROUNDS=2 timeout -s KILL 400 bash benchmarks/probe_variants.sh "$OUT/p" "$C" \
    $T/main-nocheck $T/main-KOT-nocheck $T/V113B-nocheck $T/V113B-KOT-nocheck > "$OUT/p.log" 2>&1
echo "rc=$?"; grep -E "build" "$OUT/p.log" | head; tail -n 5 "$OUT/p.log"
