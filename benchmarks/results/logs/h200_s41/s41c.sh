#!/usr/bin/env bash
# s41c: does the folded tile's duplicate Q rows' arithmetic cost energy? fp8-zerofoldedrows (wide_diagnostics.py):
# Q8's rows 32-63 zeros (the same instructions; outputs wrong by design) against fp8-main, sustained under
# nvidia-smi (power_probe.py) and bursty (probe_decode.py, two interleaved rounds). s41b priced Q.K^T at 24% of a
# sustained h32 step's energy (78.7 -> 60.0 mJ). Predicted: the bursty times equal (+-1%); energy -3..-8% if the
# tensor pipe's multipliers, not the operand reads, spend Q.K^T's share.
set -uo pipefail
W=.variants/s41/wd
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s41/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
TESTS=none PROBE_ARGS="--kv fp8" ROUNDS=2 PROBE_TIMEOUT=90 timeout -s KILL 300 bash benchmarks/probe_variants.sh \
    "$OUT/p" b128/s4096/h32/q1,b64/s2048/h16/q2 $W/fp8-main-nocheck $W/fp8-zerofoldedrows-nocheck > "$OUT/p.log" 2>&1
echo "probe rc=$?"; tail -n 3 "$OUT/p.log"
for t in fp8-main fp8-zerofoldedrows fp8-main fp8-zerofoldedrows; do
  (cd $W/$t-nocheck && MLA_BACKEND_CACHE=/tmp/ext-$t-nocheck PYTHONPATH=/tmp/devsite:$PWD timeout -s KILL 60 \
      python3 benchmarks/power_probe.py --kv fp8 --names mla_backend --configs b128/s4096/h32/q1,b64/s2048/h16/q2 \
      --seconds 3 --unchecked > "$OUT/power_$t.log" 2>&1; echo "$t rc=$?"; grep -E '^b[0-9]' "$OUT/power_$t.log")
done
