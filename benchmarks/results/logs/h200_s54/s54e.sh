#!/usr/bin/env bash
# s54e: does the benchmark's fixed cyclic order bias the 128-head rows? bench_decode.py runs the implementations of
# each round in one cyclic order (only the first rotates), so each always runs right after the same one (ours after
# sgl-kernel's FlashMLA). Main (rotated order) against the tree .variants/s56/trees/BALANCED (main at bd369e9 with
# patches/balanced_round_order.patch: a Williams design, 12 rounds), main again; every peer; the 128-head rows and
# b128/s4096/h16 as a control. Two calls on one warm machine:
#   bash benchmarks/results/logs/h200_s54/s54d.sh unpack   (carry .bundle-sglang, .variants/s49)
#   bash benchmarks/results/logs/h200_s54/s54e.sh COMMIT   (carry .peers, .variants/s56)
# Predicted (from s54c and s54d): if the order matters, b132 ours / sgl-kernel's FlashMLA moves from ~0.93x towards
# the sustained 1.00x; h16 unchanged.
set -uo pipefail
source /tmp/site-.bundle-sglang/activate.sh
CONFIGS=b128/s4096/h128/q1,b128/s4096/h128/q2,b128/s4096/h128/q2/varlen,b132/s8192/h128/q2,b128/s4096/h16/q1
PEERS="mla_backend flashmla flashmla_sglang fa3_mla fa3_mla_default flashinfer_mla"
run() {   # run TREE NAME
    (cd "$1" && PYTHONPATH=$PWD:$PYTHONPATH:/tmp/devsite timeout -s KILL 150 python3 benchmarks/bench_decode.py \
        --configs $CONFIGS --peers "$OLDPWD/.peers" --only $PEERS --card h200 --commit "$COMMIT" \
        --out-dir "$OUT/$2" > "$OUT/$2.log" 2>&1)
    echo "$2 rc=$?"; sed -n '/Ours vs the best peer/,/Geomean/p' "$OUT"/$2/h200.md | grep -E "^\| b|Geomean"
}
COMMIT=$1
run . main1
run .variants/s56/trees/BALANCED balanced
run . main2
