#!/usr/bin/env bash
# s25b: why v80 (seesaw) lost 20-26%: main and v80 with the TMA producer's loads switched off (noload diagnostic,
# outputs wrong by design), 3 interleaved probe rounds. If v80-noload beats main-noload, the seesaw's compute schedule
# is sound and its loss is the loads (the next pair's stages refilled only after the whole pair).
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .dev/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
mkdir -p "$OUT/p"
PROBE_TIMEOUT=100 ROUNDS=3 timeout -s KILL 400 bash benchmarks/probe_variants.sh "$OUT/p" \
    b128/s4096/h128/q1,b128/s4096/h128/q2,b16/s4096/h128/q1,b132/s8192/h128/q2 \
    .variants/trees/main-noload-nocheck .variants/trees/V80-noload-nocheck > "$OUT/p.log" 2>&1
echo "probe rc=$?"; grep -E "build" "$OUT/p.log" | head; tail -n 4 "$OUT/p.log"
