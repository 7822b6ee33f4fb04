#!/usr/bin/env bash
# s32a (prepared in the thirty-first session, not yet run): issue 9's grid (bench_decode --issue-grid) with SGLang's
# own FlashMLA (sgl-kernel 0.4.5, peer flashmla_sglang) among the peers, on the kernels with v83d merged (f2c88ef:
# the combine's whole-row CTAs from 256 rows). It is h200_s28/s29a.sh, never run, on the current tree. Two calls back
# to back on one warm machine (.bundle-sglang + .peers + the tree are over the 64 MiB carry limit):
#   bash benchmarks/results/logs/h200_s27/s28a.sh unpack    (carry .bundle-sglang; ~40 s)
#   bash benchmarks/results/logs/h200_s31/s32a.sh           (carry .peers; ~5 min)
# Predicted (twenty-eighth session's sweep, PERF_NOTES): sgl-kernel's FlashMLA the best peer on b128/s4096/h128 q1
# and q2 and b132/s8192/h128/q2, ours 0.90-0.95x there; the memory-bound and small-batch rows unchanged in rank;
# v83d changes none of the grid's rows (none is split with b x rows >= 256 and b x 16 <= parts).
set -uo pipefail
source /tmp/site-.bundle-sglang/activate.sh
export PYTHONPATH=$PWD:$PYTHONPATH
timeout -s KILL 420 python3 benchmarks/bench_decode.py --issue-grid --peers .peers --only mla_backend flashmla \
    flashmla_sglang fa3_mla fa3_mla_default flashinfer_mla --card h200_issue_grid_sglang --out-dir "$OUT/r" \
    > "$OUT/bench.log" 2>&1
echo "bench rc=$?"; sed -n '/Ours vs the best peer/,/Geomean/p' "$OUT"/r/*.md
