#!/usr/bin/env bash
# s44b: (1) landing v135b (exp-v135b-folded-lazy-max: v135's lazy max and rescale skip in the folded fp8 tile only; its
# folded kernel is V135's and its unfolded one main's, instruction for instruction, compared here): fp8 + scheduler
# GPU tests (memcheck included) and issue 12's fp8 grid from its tree. Predicted: tests pass (1190); b128/s4096/h32
# ~100.5 µs (s44a: -1.3%), 1.12-1.14x FlashMLA fp8; every other row as in 1b33b79's grid +-2%.
# (2) v136 / v136b against main on the 16-bit 128-head rows (TMA instantiation only; the cp.async one's SASS is
# main's but for one mbarrier init): warpgroup 1's P.V of block n issued only once warpgroup 0 has block n+1's scores,
# so it runs beside warpgroup 0's softmax (the tensor pipe's idle window) instead of beside its Q.K^T; v136b also
# issues Q.K^T a group at a time (V0 first, then V1 and RoPE each after its full wait), since the deferral frees V1
# and the RoPE sub-tile (P) ~1,100 cycles later. Knockout bound: wide-nopv1 took h128/q1 -8.5% (s23).
# Predicted: V136 h128/q1 -2..+3% (the overlap against V1/RoPE's later loads), V136B -3..-7%; b132 alike (noisy);
# b1/s32768/h128 level..+2%. Carry .variants/s44 and .peers.
set -uo pipefail
T=.variants/s44/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s44/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite
ROOT=$PWD
( cd $T/V135B && export PYTHONPATH=/tmp/devsite:$PWD MLA_BACKEND_CACHE=/tmp/ext-V135B && mkdir -p "$OUT/g" &&
  timeout -s KILL 200 python3 -m pytest -q -rs -m gpu -p no:cacheprovider tests/test_kernel_fp8_gpu.py \
      tests/test_tile_scheduler.py > "$OUT/g/fp8_tests.log" 2>&1
  echo "fp8 tests rc=$?: $(tail -n 1 "$OUT/g/fp8_tests.log")"; grep -E "^(FAILED|ERROR)" "$OUT/g/fp8_tests.log" | head
  timeout -s KILL 200 python3 benchmarks/bench_decode.py --fp8-grid --peers $ROOT/.peers --card h200 --commit "$1" \
      --out-dir "$OUT/g/r" > "$OUT/g/bench.log" 2>&1
  echo "grid rc=$?"; sed -n '/## fp8 KV cache/,/Targets met/p' "$OUT"/g/r/h200_fp8.md | grep -E "^\| b|Targets" )
rm -f "$OUT"/g/r/progress.log "$OUT"/g/r/supervisor-state.json
C=b128/s4096/h128/q1,b128/s4096/h128/q2,b16/s4096/h128/q1,b1/s32768/h128/q1,b132/s8192/h128/q2
PROBE_TEST_TIMEOUT=120 PROBE_TIMEOUT=60 ROUNDS=2 timeout -s KILL 300 bash benchmarks/probe_variants.sh "$OUT/p" "$C" \
    $T/main-nocheck $T/V136 $T/V136B > "$OUT/p.log" 2>&1
echo "probe rc=$?"; grep -E "build|tests rc|FAILED|ERROR" "$OUT/p.log" | head; tail -n 6 "$OUT/p.log"
