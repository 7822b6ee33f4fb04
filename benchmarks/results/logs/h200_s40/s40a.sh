#!/usr/bin/env bash
# s40a (prepared in the thirty-ninth session): v116 and v116b against main. v116 (branch
# exp-v116-transpose-after-softmax): the 64-row fp8 kernel's producer transposes block m only after warpgroup 0's
# softmax of block m - 1 (softmax_done mbarriers, warpgroup 0 arrives without waiting), so its shared-memory loads and
# stores stop queuing ahead of the row-max shuffles in the MIO pipe (s39k: with v114b's faster producer, 335 samples
# of short-scoreboard stalls on those shuffles). v116b (branch exp-v116b-after-softmax-piece-cursor): v116 with
# PieceCursor in the unfolded instantiation too. Both compile here with 0 spills and no C75xx; not run. Setup:
#   bash benchmarks/variant_trees.sh .variants/s40/trees main:main-nocheck exp-v116-transpose-after-softmax:V116 \
#       exp-v116b-after-softmax-piece-cursor:V116B
#   mkdir -p .variants/s40/wheels && cp .variants/s39/wheels/nvidia_cutlass*.whl .variants/s40/wheels/
# (carry .variants/s40). Predicted: V116 unfolded (h64, h128, q2 at 64 rows) 0..-2% (main's producer happens to stall
# on global reads during the shuffles, s39k); folded (h32, b64/q2) +-2% (its producer paces the block: a later
# transpose can make warpgroup 0 wait for Vt, s39g); V116B unfolded -1..-4% against main if the gate lets the faster
# producer pay, as it did in the folded tile (v114b -3%).
set -uo pipefail
T=.variants/s40/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s40/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
C=b128/s4096/h32/q1,b64/s2048/h16/q2,b128/s4096/h64/q1,b128/s4096/h128/q1,b16/s4096/h128/q1,b64/s4096/h64/q2
TESTS="tests/test_kernel_fp8_gpu.py" PROBE_TEST_TIMEOUT=240 PROBE_ARGS="--kv fp8" PROBE_TIMEOUT=80 ROUNDS=2 \
    timeout -s KILL 430 bash benchmarks/probe_variants.sh "$OUT/p" "$C" $T/main-nocheck $T/V116 $T/V116B > "$OUT/p.log" 2>&1
echo "rc=$?"; grep -E "build|tests rc|FAILED|passed|failed" "$OUT/p.log" | head -20; tail -n 7 "$OUT/p.log"
# Row halves against the folded 64-row tile for one request of 17-32 rows (FP8_ROW_HALVES_MAX_BATCH = 1 was measured
# before the fold). Predicted: halves keep b1 at long contexts (132 parts of one request: the folded tile's fixed
# cost per part is larger than half a tile's), the folded tile within 5% at b1/s4096.
cd $T/main-nocheck
export MLA_BACKEND_CACHE=/tmp/ext-main-nocheck PYTHONPATH=/tmp/devsite:$PWD
H=b1/s32768/h32/q1,b1/s8192/h32/q1,b1/s4096/h32/q1,b1/s32768/h16/q2,b1/s65536/h32/q1
for r in 1 2; do
  timeout -s KILL 60 python3 benchmarks/probe_decode.py --configs $H --kv fp8 > "$OUT/halves_$r.log" 2>&1
  echo "halves $r rc=$?"
  timeout -s KILL 60 python3 benchmarks/probe_decode.py --configs $H --kv fp8 --parts 132 > "$OUT/folded_$r.log" 2>&1
  echo "folded $r rc=$?"
done
grep -hE "^b[0-9]" "$OUT"/halves_*.log "$OUT"/folded_*.log
