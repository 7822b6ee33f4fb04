#!/usr/bin/env bash
# s48f: ncu (--set full, SASS source counters) of sgl-kernel 0.4.5's FlashMLA (the fast-math build, 10% fewer cycles
# a sustained b132 step than ours in s43e) and of main's 16-bit 64-row kernel, b132/s8192/h128/q2 then
# b128/s4096/h128/q1, one launch each inside probe_decode's graph replays, so the next design starts from where
# FlashMLA's cycles differ (s44f's ncu took vLLM's build, which lacks fast math). One call: carry .bundle-sglang and
# .variants/s48 (the cutlass wheel); FlashMLA's peer needs no vLLM bundle.
# Predicted: FlashMLA's tensor pipe ~8-10% more active than ours at b132 with fewer warp instructions; where ours
# loses the cycles (stall reasons by phase) is the open question.
set -uo pipefail
SITE=/tmp/site-.bundle-sglang
python3 -m mla_backend.cli.bundle unpack .bundle-sglang --target $SITE > "$OUT/unpack.log" 2>&1; echo "unpack rc=$?"
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s48/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
source $SITE/activate.sh
export PYTHONPATH=/tmp/devsite:$PWD:${PYTHONPATH:-}
python3 -c "from mla_backend import _build; _build.load_extension()" > "$OUT/build.log" 2>&1; echo "build rc=$?"
run() {   # name, kernel regex, command...
  local name=$1 regex=$2; shift 2
  timeout -s KILL 130 ncu --set full --import-source no --clock-control none -k "regex:$regex" --launch-skip 3 \
      --launch-count 1 -o "$OUT/$name" "$@" > "$OUT/ncu_$name.log" 2>&1
  echo "ncu $name rc=$?"
  [ -f "$OUT/$name.ncu-rep" ] || { tail -n 5 "$OUT/ncu_$name.log"; return; }
  ncu -i "$OUT/$name.ncu-rep" --page source --csv --print-source sass > "$OUT/${name}_sass.csv" 2>&1
  ncu -i "$OUT/$name.ncu-rep" --page details > "$OUT/${name}_details.txt" 2>&1
  gzip "$OUT/${name}_sass.csv"; rm -f "$OUT/$name.ncu-rep"
  grep -E "^ +(Duration|Elapsed Cycles|SM Frequency|Executed Ipc Active|Issue Slots Busy|Warp Cycles Per Issued)" \
      "$OUT/${name}_details.txt" | head -8
}
P=benchmarks/results/logs/h200_s48/s48f_peer_probe.py
run flashmla_b132 flash_fwd_splitkv_mla python3 $P b132/s8192/h128/q2 5
run ours_b132 mla_decode_kernel python3 benchmarks/probe_decode.py --configs b132/s8192/h128/q2 --reps 5
run flashmla_h128 flash_fwd_splitkv_mla python3 $P b128/s4096/h128/q1 5
run ours_h128 mla_decode_kernel python3 benchmarks/probe_decode.py --configs b128/s4096/h128/q1 --reps 5
ls -la "$OUT"
