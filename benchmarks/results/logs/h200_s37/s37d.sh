#!/usr/bin/env bash
# s37d: why v106 (block i+1's Q.K^T before block i's P.V, softmax under P.V) measured level with v105c (s37c) where
# the chain model predicted -25..-35%. Two hypotheses, one call: (1) the card's power cap (every knockout of s37b
# saved time in proportion to the energy it removed, and reordering removes none): power_probe.py, ours fp8 / our
# bf16 / FlashMLA fp8 alone for 3 s each, clock and power; (2) a throughput limit inside the SM (shared memory
# bandwidth, issue): ncu --set full of one v106 launch (SASS-level stall samples) and of one FlashMLA fp8 launch.
# Trees: .variants/s37/trees/V106 (exp-v106-fp8-qk-first, with power_probe --kv). Carry .variants/s37 and .peers.
set -uo pipefail
T=.variants/s37/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s37/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
cd $T/V106
export MLA_BACKEND_CACHE=/tmp/ext-V106 PYTHONPATH=/tmp/devsite:$PWD
python3 -c "from mla_backend import _build; _build.load_extension()" > "$OUT/build.log" 2>&1; echo "build rc=$?"
timeout -s KILL 150 python3 benchmarks/power_probe.py --peers ../../../../.peers --kv fp8 \
    --configs b128/s4096/h128/q1,b128/s4096/h64/q1 --names mla_backend,mla_backend_bf16,flashmla_fp8 --seconds 3 \
    > "$OUT/power.log" 2>&1
echo "power rc=$?"; tail -n 8 "$OUT/power.log"
timeout -s KILL 150 ncu --set full --import-source no --clock-control none -k regex:mla_decode_wide_fp8 \
    --launch-skip 3 --launch-count 1 -o "$OUT/v106" python3 benchmarks/probe_decode.py --configs b128/s4096/h128/q1 \
    --kv fp8 --reps 5 > "$OUT/ncu_v106_run.log" 2>&1
echo "ncu v106 rc=$?"
ncu -i "$OUT/v106.ncu-rep" --page details > "$OUT/v106_details.txt" 2>&1
ncu -i "$OUT/v106.ncu-rep" --page source --csv --print-source sass > "$OUT/v106_sass.csv" 2>&1
timeout -s KILL 150 ncu --set full --import-source no --clock-control none -k regex:splitkv_mla \
    --launch-skip 2 --launch-count 1 -o "$OUT/flashmla" python3 benchmarks/bench_decode.py --configs \
    b128/s4096/h128/q1 --kv fp8 --only flashmla_fp8 --peers ../../../../.peers --reps 5 --warmup 2 --in-process \
    --out-dir /tmp/fm > "$OUT/ncu_flashmla_run.log" 2>&1
echo "ncu flashmla rc=$?"
ncu -i "$OUT/flashmla.ncu-rep" --page details > "$OUT/flashmla_details.txt" 2>&1
ls -la "$OUT"; rm -f "$OUT"/*.ncu-rep
grep -E "SM Frequency|Duration|Compute \(SM\) Throughput|Memory Throughput|Issue Slots Busy|Shared" "$OUT"/*_details.txt | head -30
