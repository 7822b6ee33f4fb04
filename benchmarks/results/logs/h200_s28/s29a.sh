#!/usr/bin/env bash
# s29a (prepared in the twenty-eighth session, not yet run): issue 9's grid (bench_decode --issue-grid) with SGLang's
# own FlashMLA (sgl-kernel 0.4.5, peer flashmla_sglang) among the peers, in one process with SGLang's environment on
# the path. Why: in the twenty-eighth session's b <= 32 sweep it led ours in every compute-bound config it lost
# (693 vs 630 TFLOPS at b32/s8192/h128/q2); the grid's b128 h128 rows and b132 have not met it. Predicted (PERF_NOTES):
# those three rows at 0.90-0.95x, the memory-bound and small-batch rows unchanged in rank. Two calls back to back
# (.bundle-sglang + .peers + the tree are over the 64 MiB carry limit):
#   bash benchmarks/results/logs/h200_s27/s28a.sh unpack    (carry .bundle-sglang: SGLang's site in /tmp)
#   bash benchmarks/results/logs/h200_s28/s29a.sh           (carry .peers; ~5 min)
set -uo pipefail
source /tmp/site-.bundle-sglang/activate.sh
export PYTHONPATH=$PWD:$PYTHONPATH
timeout -s KILL 540 python3 benchmarks/bench_decode.py --issue-grid --peers .peers --only mla_backend flashmla \
    flashmla_sglang fa3_mla fa3_mla_default flashinfer_mla --card h200_issue_grid_sglang --commit "$(git rev-parse --short HEAD)" \
    --out-dir "$OUT/r" > "$OUT/bench.log" 2>&1
echo "bench rc=$?"; sed -n '/Ours vs the best peer/,/Geomean/p' "$OUT"/r/*.md
