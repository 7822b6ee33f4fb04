#!/usr/bin/env bash
# s37b: v105c (v105b with the fp8 reference quantizing the query at every row count: s37a's one failure was the
# reference, which still took the 64-row kernel's query as given) - its fp8 GPU tests in full (memcheck included);
# knockout copies of it (benchmarks/wide_diagnostics.py fp8-*) to find where a 64-row block's ~2 us goes (s37a:
# h64 and h128 cost ~3,500 cycles a tile-block against ~1,600 of fp8 tensor work); and the fp8 peers on the rows
# over 32 (an engine is refused them so far).
# Trees (here): variant_trees.sh .variants/s37/trees main:main-nocheck exp-v105-fp8-wide-qgmma:V105C, then
#   python3 .variants/s37/trees/V105C/benchmarks/wide_diagnostics.py .variants/s37/trees/V105C .variants/s37/wd
#   (fp8-* kept). Carry .variants/s37 and .peers.
# Predicted: V105C tests all pass. Knockouts (b128/s4096/h64, 127 us): if the producer binds (2 raw stages, copy
# released only after Q.K^T and the transpose), noload and notranspose gain most (-20..-40%) and the wgmma
# knockouts little; if the consumer chain binds, noqk ~ -25%, nopv ~ -35%, nosoftmax -15..-25%.
set -uo pipefail
T=.variants/s37/trees W=.variants/s37/wd
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s37/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
C=b128/s4096/h64/q1,b128/s4096/h128/q1,b128/s4096/h32/q1,b16/s4096/h128/q1
TESTS="tests/test_kernel_fp8_gpu.py" PROBE_TEST_TIMEOUT=300 PROBE_ARGS="--kv fp8" PROBE_TIMEOUT=60 ROUNDS=1 \
    timeout -s KILL 420 bash benchmarks/probe_variants.sh "$OUT/ko" "$C" $T/V105C $T/main-nocheck $W/fp8-noqk-nocheck \
    $W/fp8-nopv-nocheck $W/fp8-nopv1-nocheck $W/fp8-nosoftmax-nocheck $W/fp8-notranspose-nocheck \
    $W/fp8-noload-nocheck > "$OUT/ko.log" 2>&1
echo "ko rc=$?"; grep -E "tests rc|FAILED" "$OUT/ko.log"; tail -n 5 "$OUT/ko.log"
B=b128/s4096/h64/q1,b128/s4096/h128/q1,b16/s4096/h128/q1,b1/s32768/h128/q1,b64/s2048/h64/q2,b128/s4096/h32/q1
(cd $T/V105C && MLA_BACKEND_CACHE=/tmp/ext-V105C timeout -s KILL 150 python3 benchmarks/bench_decode.py --configs $B \
    --kv fp8 --peers ../../../../.peers --card h200 --commit v105c --out-dir "$OUT/bench" > "$OUT/bench.log" 2>&1)
echo "bench rc=$?"; tail -n 30 "$OUT/bench.log"
