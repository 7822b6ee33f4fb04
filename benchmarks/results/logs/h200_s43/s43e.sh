#!/usr/bin/env bash
# s43e: issue 9's grid with SGLang's own FlashMLA (sgl-kernel 0.4.5, peer flashmla_sglang) among the peers, on v133c
# (7f5022b), as s32a ran it on b37c537 (then ours 0.92x / 0.89x / 0.86x it on h128/q1, q2, b132), plus the 128-head
# rows sustained against it. Two calls back to back on one warm machine:
#   bash benchmarks/results/logs/h200_s27/s28a.sh unpack    (carry .bundle-sglang)
#   bash benchmarks/results/logs/h200_s43/s43e.sh 7f5022b   (carry .peers and .variants/s43)
# Predicted: ours 0.95-0.99x it on the four 128-head rows (v133c took 4-7% off them), ahead elsewhere as in s32a.
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s43/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
source /tmp/site-.bundle-sglang/activate.sh
export PYTHONPATH=/tmp/devsite:$PWD:$PYTHONPATH
timeout -s KILL 360 python3 benchmarks/bench_decode.py --issue-grid --peers .peers --only mla_backend flashmla \
    flashmla_sglang fa3_mla fa3_mla_default flashinfer_mla --card h200_issue_grid_sglang --commit "$1" \
    --out-dir "$OUT/r" > "$OUT/bench.log" 2>&1
echo "bench rc=$?"; sed -n '/Ours vs the best peer/,/Geomean/p' "$OUT"/r/*.md
timeout -s KILL 60 python3 benchmarks/power_probe.py --peers .peers --names mla_backend,flashmla_sglang,flashmla \
    --configs b132/s8192/h128/q2,b128/s4096/h128/q1 --seconds 3 > "$OUT/power.log" 2>&1
echo "power rc=$?"; grep -E '^b[0-9]' "$OUT/power.log"
