#!/usr/bin/env bash
# s41b: where the energy of a decode step goes. s41a found b128/s4096/h32 fp8 at the 700 W cap when sustained (ours
# 1748 MHz, FlashMLA fp8 1920; 77.2 / 79.6 mJ a step), so a sustained step's time is its energy over ~692 W. Here
# each knockout copy of wide_diagnostics.py (main's kernels, outputs wrong by design) runs alone for 3 s under
# nvidia-smi: fp8 at b128/s4096/h32 (the folded tile), bf16 at b132/s8192/h128/q2 (issue 9's row at 0.98x vLLM's
# FlashMLA, power-capped). Predicted: the loads (HBM + the shared-memory writes) the largest share in fp8 (~25-35%),
# Q.K^T next (~15-25%: half of it the folded tile's duplicate rows); in bf16 Q.K^T's 144 KB of shared-memory operand
# reads a block the largest (~25-30%).
# Setup: python benchmarks/wide_diagnostics.py . .variants/s41/wd (keep the nine copies below, each stripped of
# benchmarks/results, docs, configs, integration_tests, PERF_NOTES); the cutlass wheel in .variants/s41/wheels;
# carry .variants/s41/wd and .variants/s41/wheels.
set -uo pipefail
W=.variants/s41/wd
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s41/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
FP8="fp8-main fp8-noqk fp8-noload fp8-nopv fp8-nofoldedsoftmax"
BF16="wide-main wide-noqk wide-noload wide-nosoftmax"
for t in $FP8 $BF16; do
  (cd $W/$t-nocheck && MLA_BACKEND_CACHE=/tmp/ext-$t PYTHONPATH=/tmp/devsite:$PWD timeout 400 \
      python3 -c "from mla_backend import _build; _build.load_extension()" > "$OUT/build_$t.log" 2>&1
   echo "build $t rc=$?") &
done
wait
run() {   # tree, kv, config
  (cd $W/$1-nocheck && MLA_BACKEND_CACHE=/tmp/ext-$1 PYTHONPATH=/tmp/devsite:$PWD timeout -s KILL 60 \
      python3 benchmarks/power_probe.py --kv $2 --names mla_backend --configs $3 --seconds 3 --unchecked \
      > "$OUT/power_$1.log" 2>&1; echo "$1 rc=$? $(grep -E '^b[0-9]' "$OUT/power_$1.log")")
}
for t in $FP8; do run $t fp8 b128/s4096/h32/q1; done
for t in $BF16; do run $t bf16 b132/s8192/h128/q2; done
