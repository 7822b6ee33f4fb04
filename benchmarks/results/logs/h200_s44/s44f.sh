#!/usr/bin/env bash
# s44f: ncu --set full of the 16-bit 64-row kernel (main, 670ca07: v133c's) and of vLLM's FlashMLA (the same seesaw
# kernel sgl-kernel builds with fast math) at b128/s4096/h128/q1, one launch each, to test this session's reading that
# the 128-head rows are bound by shared memory (Q.K^T's SS operands take its 128 bytes a cycle): the shared-memory
# pipe and the tensor pipe busy in each, and issue activity. Predicted: ours shared memory ~70-80% of peak, the tensor
# pipe ~65-70%; FlashMLA both ~5-10 points higher. Carry .variants/s44 (the cutlass wheel) and .peers.
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s44/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
python3 -c "from mla_backend import _build; _build.load_extension()" > "$OUT/build.log" 2>&1; echo "build rc=$?"
timeout -s KILL 150 ncu --set full --import-source no --clock-control none -k regex:mla_decode_kernel \
    --launch-skip 3 --launch-count 1 -o "$OUT/ours" python3 benchmarks/probe_decode.py --configs b128/s4096/h128/q1 \
    --reps 5 > "$OUT/ncu_ours.log" 2>&1
echo "ncu ours rc=$?"
timeout -s KILL 200 ncu --set full --import-source no --clock-control none -k regex:flash_fwd_splitkv_mla_kernel \
    --launch-skip 3 --launch-count 1 -o "$OUT/flashmla" python3 benchmarks/bench_decode.py --configs b128/s4096/h128/q1 \
    --peers .peers --only flashmla --in-process --reps 50 --out-dir /tmp/bd > "$OUT/ncu_flashmla.log" 2>&1
echo "ncu flashmla rc=$?"
for k in ours flashmla; do
  [ -f "$OUT/$k.ncu-rep" ] || continue
  ncu -i "$OUT/$k.ncu-rep" --page details > "$OUT/${k}_details.txt" 2>&1
  ncu -i "$OUT/$k.ncu-rep" --page raw --csv > "$OUT/${k}_raw.csv" 2>&1
  echo "== $k"
  grep -E "Duration|SM Frequency|Compute \(SM\) Throughput|Issue Slots Busy|Executed Ipc A|Mem Pipes Busy|Registers Per|Shared Memory Configuration Size" "$OUT/${k}_details.txt" | head -12
  python3 - "$OUT/${k}_raw.csv" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
head, units, vals = rows[0], rows[1], rows[2]
for name, unit, val in zip(head, units, vals):
    n = name.lower()
    if ("pipe_tensor" in n or "pipe_shared" in n or "data_pipe_lsu_wavefronts_mem_shared" in n or "pipe_fma" in n
            or "pipe_xu" in n or "pipe_alu" in n) and ("pct" in n):
        print(f"  {name} = {val} {unit}")
PY
  gzip "$OUT/${k}_raw.csv"; rm -f "$OUT/$k.ncu-rep"
done
