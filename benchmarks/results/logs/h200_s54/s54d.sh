#!/usr/bin/env bash
# s54d: energy a step at the 128-head rows, ours (main, v167) against sgl-kernel's FlashMLA and vLLM's, each replayed
# alone for 3 s at the card's power cap (benchmarks/power_probe.py). Two calls back to back on one warm machine:
#   bash benchmarks/results/logs/h200_s54/s54d.sh unpack   (carry .bundle-sglang, .variants/s49)
#   bash benchmarks/results/logs/h200_s54/s54d.sh power    (carry .peers)
# Predicted: every row at the cap (~692 W), so time ~ energy; sgl-kernel's FlashMLA 3-8% fewer mJ a step than ours
# (the grid's 0.93-0.99x), vLLM's FlashMLA more than ours (s50a: 755.6 against 714.2 mJ at b132).
set -uo pipefail
SITE=/tmp/site-.bundle-sglang
if [ "$1" = unpack ]; then
    python3 -m mla_backend.cli.bundle unpack .bundle-sglang --target $SITE > "$OUT/unpack.log" 2>&1
    echo "unpack rc=$?"
    python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s49/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
    exit 0
fi
source $SITE/activate.sh
export PYTHONPATH=$PWD:$PYTHONPATH:/tmp/devsite   # CUTLASS for our extension's build
timeout -s KILL 400 python3 benchmarks/power_probe.py --peers .peers \
    --configs b132/s8192/h128/q2,b128/s4096/h128/q2,b128/s4096/h128/q1 \
    --names mla_backend,flashmla_sglang,flashmla --seconds 3 > "$OUT/power.log" 2>&1
echo "power rc=$?"; cat "$OUT/power.log"
