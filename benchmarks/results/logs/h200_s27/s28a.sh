#!/usr/bin/env bash
# s28a (prepared in the twenty-seventh session, not yet run): the kernel alone on the serving shapes against
# SGLang's own FlashMLA (sgl-kernel 0.4.5's, peer flashmla_sglang) next to vLLM's fork (flashmla) and FA3-MLA, in one
# process with SGLang's environment on the path; then the fp8 configs against both engines' fp8 FlashMLA. Why: at
# 64 x 4096 SGLang served ours and flashmla at parity (0.995x), where the kernel table (vLLM's FlashMLA) predicts
# ours 1.8% ahead. Two calls back to back (.bundle-sglang + .peers + the tree are over the 64 MiB carry limit):
#   bash benchmarks/results/logs/h200_s27/s28a.sh unpack    (carry .bundle-sglang)
#   bash benchmarks/results/logs/h200_s27/s28a.sh bench     (carry .peers; 5-9 min)
set -uo pipefail
SITE=/tmp/site-.bundle-sglang
if [ "$1" = unpack ]; then
    python3 -m mla_backend.cli.bundle unpack .bundle-sglang --target $SITE > "$OUT/unpack.log" 2>&1; echo "unpack rc=$?"
    exit 0
fi
source $SITE/activate.sh
export PYTHONPATH=$PWD:$PYTHONPATH
COMMIT=$(git rev-parse --short HEAD)
C=b1/s4096/h128/q1,b16/s4096/h128/q1,b64/s4096/h128/q1,b1/s16384/h128/q1,b16/s16384/h128/q1,b1/s32768/h128/q1
timeout -s KILL 300 python3 benchmarks/bench_decode.py --configs $C --peers .peers --only mla_backend flashmla \
    flashmla_sglang fa3_mla fa3_mla_default --card h200_serving_shapes_sglang --commit "$COMMIT" --out-dir "$OUT/r" \
    > "$OUT/bench.log" 2>&1
echo "bench rc=$?"; sed -n '/Ours vs the best peer/,/Geomean/p' "$OUT"/r/*.md; grep -i "unavailable" "$OUT"/r/*.md | head
# + DeepSeek-V3 at TP 8 with MTP (16 heads x 3 and 4 tokens: 48 and 64 rows, the 64-row fp8 kernel)
F=b128/s4096/h16/q1,b64/s16384/h16/q1,b1/s32768/h16/q1,b32/s1024/h16/q1,b128/s4096/h32/q1,b128/s4096/h16/q3,\
b64/s8192/h16/q4
timeout -s KILL 240 python3 benchmarks/bench_decode.py --kv fp8 --configs $F --peers .peers --card h200_fp8_sglang \
    --commit "$COMMIT" --out-dir "$OUT/f" > "$OUT/fp8.log" 2>&1
echo "fp8 rc=$?"; sed -n '/fp8 KV cache: ours vs/,/Targets met/p' "$OUT"/f/*.md | head -20
