#!/usr/bin/env bash
# s24c: (1) how ours, FlashMLA and FA3-MLA scale with requests a CTA at equal work (h128/q2, Σseqlen 1081344:
# 2, 4, 8 requests a CTA); (2) v77 (the next request's Q copied under the epilogue): kernel tests, 3 probe rounds.
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .dev/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
timeout -s KILL 200 python3 benchmarks/bench_decode.py --configs b66/s16384/h128/q2,b132/s8192/h128/q2,b264/s4096/h128/q2 \
    --only mla_backend flashmla fa3_mla --peers .peers --card h200 --out-dir /tmp/rs > "$OUT/scaling.log" 2>&1
echo "scaling rc=$?"; mkdir -p "$OUT/scaling"; cp /tmp/rs/h200.md "$OUT/scaling/" 2>/dev/null
grep -A8 "## Every implementation: µs" /tmp/rs/h200.md | tail -4
mkdir -p "$OUT/p"
PROBE_TIMEOUT=120 ROUNDS=3 timeout -s KILL 380 bash benchmarks/probe_variants.sh "$OUT/p" \
    b128/s4096/h128/q1,b128/s4096/h128/q2,b132/s8192/h128/q2,b16/s4096/h128/q1,b128/s4096/h64/q1 \
    .variants/trees/main-nocheck .variants/trees/V77 > "$OUT/p.log" 2>&1
echo "probe rc=$?"; grep -E "tests rc|FAILED|ERROR" "$OUT/p.log" | head -5; tail -n 5 "$OUT/p.log"
