#!/usr/bin/env bash
# s52b: main's GPU tests (both kernel files, memcheck among them) and issue 9's grid with every peer, sgl-kernel
# 0.4.5's FlashMLA included, written as benchmarks/results/h200.{md,json}. Two calls back to back on one warm machine
# (.bundle-sglang + .peers + the tree are over the carry limit):
#   bash benchmarks/results/logs/h200_s52/s52b.sh unpack COMMIT   (carry .bundle-sglang, .variants/s49: unpack + tests)
#   bash benchmarks/results/logs/h200_s52/s52b.sh grid COMMIT     (carry .peers: the grid, ~5 min)
# Predicted: tests as s51f (2438 passed, 42 skipped); the grid as 97fe1c2's with b8/s8192/h16 and its varlen twin
# ~1.5% faster (v160b) and the four 128-head rows behind sgl-kernel's FlashMLA by 4-9% (h200_issue_grid_sglang at
# 7f5022b: 0.91-0.96x; v153 took 1-2.5% since).
set -uo pipefail
SITE=/tmp/site-.bundle-sglang
if [ "$1" = unpack ]; then
    python3 -m mla_backend.cli.bundle unpack .bundle-sglang --target $SITE > "$OUT/unpack.log" 2>&1
    echo "unpack rc=$?"
    python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s49/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
    PYTHONPATH=/tmp/devsite:$PWD timeout -s KILL 240 python3 -m pytest -q -m gpu -p no:cacheprovider \
        tests/test_kernel_gpu.py tests/test_kernel_fp8_gpu.py > "$OUT/tests.log" 2>&1
    echo "tests rc=$?: $(tail -n 1 "$OUT/tests.log")"; grep -E "^(FAILED|ERROR)" "$OUT/tests.log" | head -5
    exit 0
fi
source $SITE/activate.sh
export PYTHONPATH=$PWD:$PYTHONPATH
timeout -s KILL 540 python3 benchmarks/bench_decode.py --issue-grid --peers .peers --only mla_backend flashmla \
    flashmla_sglang fa3_mla fa3_mla_default flashinfer_mla --card h200 --commit "$2" --out-dir "$OUT/r" \
    > "$OUT/bench.log" 2>&1
echo "bench rc=$?"; sed -n '/Ours vs the best peer/,/Geomean/p' "$OUT"/r/*.md
