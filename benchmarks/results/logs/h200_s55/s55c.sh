#!/usr/bin/env bash
# s55c: main's GPU tests (both kernel files, memcheck among them), issue 9's grid with every peer (sgl-kernel's
# FlashMLA included) written as benchmarks/results/h200.{md,json}, then an ncu of main's 16-bit 64-row kernel. Three
# calls back to back on one warm machine; the CUTLASS headers come from SGLang's bundle (it ships nvidia-cutlass), so
# the first call carries only .bundle-sglang (the working tree, the bundle and the wheel were over the carry limit):
#   bash benchmarks/results/logs/h200_s55/s55c.sh unpack COMMIT   (carry .bundle-sglang: unpack + tests)
#   bash benchmarks/results/logs/h200_s55/s55c.sh grid COMMIT     (carry .peers: the grid)
#   bash benchmarks/results/logs/h200_s55/s55c.sh ncu             (no carry: s48g's ncu, b132 and h128/q1)
# Predicted: tests 2438 passed, 42 skipped; the grid as 87ead46's (s54c) with the 128-head rows ~1% faster (v170):
# against sgl-kernel's FlashMLA h128/q1 ~1.00x, q2 ~0.98x, b132 0.92-0.95x. ncu against s48g's main (1,553,747 cycles
# and 226 M warp instructions at b132; 409,822 and 57.3 M at h128/q1): instructions -6..-9%, cycles -1..-2%.
set -uo pipefail
SITE=/tmp/site-.bundle-sglang
if [ "$1" = unpack ]; then
    python3 -m mla_backend.cli.bundle unpack .bundle-sglang --target $SITE > "$OUT/unpack.log" 2>&1
    echo "unpack rc=$?"
fi
source $SITE/activate.sh
export PYTHONPATH=$PWD:${PYTHONPATH:-}
if [ "$1" = unpack ]; then
    timeout -s KILL 300 python3 -m pytest -q -m gpu -p no:cacheprovider \
        tests/test_kernel_gpu.py tests/test_kernel_fp8_gpu.py > "$OUT/tests.log" 2>&1
    echo "tests rc=$?: $(tail -n 1 "$OUT/tests.log")"; grep -E "^(FAILED|ERROR)" "$OUT/tests.log" | head -5
elif [ "$1" = grid ]; then
    timeout -s KILL 540 python3 benchmarks/bench_decode.py --issue-grid --peers .peers --only mla_backend flashmla \
        flashmla_sglang fa3_mla fa3_mla_default flashinfer_mla --card h200 --commit "$2" --out-dir "$OUT/r" \
        > "$OUT/bench.log" 2>&1
    echo "bench rc=$?"; sed -n '/Ours vs the best peer/,/Geomean/p' "$OUT"/r/*.md
elif [ "$1" = ncu ]; then
    W=$(mktemp -d)
    run() {   # name, config
      timeout -s KILL 80 ncu --set full --import-source no --clock-control none -k "regex:mla_decode_kernel" \
          --launch-skip 3 --launch-count 1 -o "$W/$1" python3 benchmarks/probe_decode.py --configs "$2" --reps 5 \
          > "$W/ncu_$1.log" 2>&1
      echo "ncu $1 rc=$?"
      [ -f "$W/$1.ncu-rep" ] || { tail -n 5 "$W/ncu_$1.log"; return; }
      ncu -i "$W/$1.ncu-rep" --page source --csv --print-source sass > "$W/$1_sass.csv" 2>&1
      ncu -i "$W/$1.ncu-rep" --page details > "$W/$1_details.txt" 2>&1
      gzip "$W/$1_sass.csv"; rm -f "$W/$1.ncu-rep"
      grep -E "^ +(Elapsed Cycles|Duration|SM Frequency|Executed Instructions  |Issue Slots Busy)" "$W/$1_details.txt"
    }
    run ours_b132 b132/s8192/h128/q2
    run ours_h128 b128/s4096/h128/q1
    tar -czf "$OUT/s55c_ncu.tgz" -C "$W" .
fi
