#!/usr/bin/env bash
# s55h: s54d's energy a step at the power cap again, on main after v170 (668f97e): ours, sgl-kernel's FlashMLA and
# vLLM's FlashMLA, each replayed alone for 3 s, the 128-head rows. Two calls back to back on one warm machine:
#   bash benchmarks/results/logs/h200_s55/s55h.sh unpack   (carry .bundle-sglang; CUTLASS comes from it)
#   bash benchmarks/results/logs/h200_s55/s55h.sh power    (carry .peers)
# Predicted: ours ~1.6% fewer mJ than in s54d (s55b), so below sgl-kernel's FlashMLA at b132 (s54d: 708.9 / 712.1) and
# level with it at 128 heads x 4k (s54d: 1.0-2.9% more).
set -uo pipefail
SITE=/tmp/site-.bundle-sglang
if [ "$1" = unpack ]; then
    python3 -m mla_backend.cli.bundle unpack .bundle-sglang --target $SITE > "$OUT/unpack.log" 2>&1
    echo "unpack rc=$?"
    exit 0
fi
source $SITE/activate.sh
export PYTHONPATH=$PWD:$PYTHONPATH
timeout -s KILL 400 python3 benchmarks/power_probe.py --peers .peers \
    --configs b132/s8192/h128/q2,b128/s4096/h128/q2,b128/s4096/h128/q1 \
    --names mla_backend,flashmla_sglang,flashmla --seconds 3 > "$OUT/power.log" 2>&1
echo "power rc=$?"; cat "$OUT/power.log"
