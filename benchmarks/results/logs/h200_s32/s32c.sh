#!/usr/bin/env bash
# s32c (thirty-second session): v86, the seesaw in FlashMLA's order (branch exp-v86-seesaw-flashmla-order), against
# main and v85 on the 128-head rows, then v86 against sgl-kernel's FlashMLA in one process. Two calls back to back:
#   bash benchmarks/results/logs/h200_s27/s28a.sh unpack      (carry .bundle-sglang)
#   bash benchmarks/results/logs/h200_s32/s32c.sh             (carry .variants/s32)
# Trees: `bash benchmarks/variant_trees.sh .variants/s32/trees exp-v86-seesaw-flashmla-order:V86` plus main's and
# v85's from .variants/trees; "-nocheck" trees skip the kernel tests (the probe checks every output).
set -uo pipefail
T=.variants/s32/trees
C=b132/s8192/h128/q2,b128/s4096/h128/q1,b128/s4096/h128/q2,b64/s4096/h128/q1,b16/s4096/h128/q1,\
b1/s32768/h128/q1,b8/s1024/h128/q1,b32/s8192/h128/q2
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s32/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
# smoke: a hang or a wrong 128-head result drops V86 from the probe
(cd $T/V86 && MLA_BACKEND_CACHE=/tmp/ext-V86 PYTHONPATH=$PWD:$PYTHONPATH timeout -s KILL 120 python3 -m pytest -x -q \
    -m gpu -p no:cacheprovider tests/test_kernel_gpu.py -k "zero_length or cuda_graph or unit_variance" \
    > "$OUT/smoke.log" 2>&1); rc=$?
echo "smoke rc=$rc: $(tail -n 1 "$OUT/smoke.log")"
TREES="$T/main-nocheck $T/V85-nocheck"
[ $rc = 0 ] && TREES="$TREES $T/V86"
TESTS="./tests/test_kernel_gpu.py" PROBE_TEST_TIMEOUT=200 PROBE_TIMEOUT=90 ROUNDS=2 \
    timeout -s KILL 330 bash benchmarks/probe_variants.sh "$OUT/p" "$C" $TREES > "$OUT/p.log" 2>&1
echo "probe rc=$?"; grep -E "tests rc|FAILED" "$OUT/p.log" | head -8; tail -n 12 "$OUT/p.log"
[ $rc = 0 ] && [ -f /tmp/site-.bundle-sglang/activate.sh ] || exit 0
source /tmp/site-.bundle-sglang/activate.sh
cd $T/V86 && MLA_BACKEND_CACHE=/tmp/ext-V86 PYTHONPATH=$PWD:/tmp/devsite:$PYTHONPATH timeout -s KILL 150 \
    python3 benchmarks/bench_decode.py --configs b132/s8192/h128/q2,b128/s4096/h128/q1,b128/s4096/h128/q2,\
b64/s4096/h128/q1,b16/s4096/h128/q1 --only mla_backend flashmla_sglang --card v86_vs_sglang --commit 0b5bee5 \
    --out-dir "$OUT/b" > "$OUT/bench.log" 2>&1
echo "bench rc=$?"; sed -n '/Ours vs the best peer/,/Geomean/p' "$OUT"/b/*.md
