#!/usr/bin/env bash
# s33a (prepared in the thirty-second session, not yet run): what v86's loads cost. One call (carry .variants/s33;
# ~7 min). Trees (`benchmarks/variant_trees.sh .variants/s33/trees exp-v87a-no-gate:V87A-nocheck
# exp-v88-consumer-tma:V88 exp-v87a-trace:V87A-trace-nocheck`, main-nocheck = main's kernels; the noload twins by
# the edit in this folder's README):
#   V88: v87a without a producer warpgroup (256 threads; each group's last reader loads the block two places later
#        into its stage by TMA from its warpgroup's thread 0), kernel tests first;
#   V88-noload, V87A-trace(-noload): noload twins, and v87a's phase trace (cycles a pair, CTA (0, 0)) with and
#        without loads, printed under MLA_TRACE_PHASES=1.
# Predicted (PERF_NOTES, thirty-second session): if the producer hop and its in-order issue are what loads cost the
# seesaw, V88 recovers most of v87a's 277 -> ~235-245 µs at b128/s4096/h128/q1 (V88-noload ~ v86-noload 227); if
# not, V88 ~ v87a and the trace says which phase grows with loads.
set -uo pipefail
T=.variants/s33/trees
C=b128/s4096/h128/q1,b128/s4096/h128/q2,b132/s8192/h128/q2,b64/s4096/h128/q1,b16/s4096/h128/q1,b1/s32768/h128/q1
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s33/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD MLA_TRACE_PHASES=1
TESTS="./tests/test_kernel_gpu.py" PROBE_TEST_TIMEOUT=150 PROBE_TIMEOUT=80 ROUNDS=2 timeout -s KILL 520 \
    bash benchmarks/probe_variants.sh "$OUT/p" "$C" $T/main-nocheck $T/V87A-nocheck $T/V88 $T/V88-noload-nocheck \
    $T/V87A-trace-nocheck $T/V87A-trace-noload-nocheck > "$OUT/p.log" 2>&1
echo "probe rc=$?"; grep -E "tests rc|FAILED" "$OUT/p.log" | head -8; tail -n 7 "$OUT/p.log"
mkdir -p "$OUT/t" && tar -xzf "$OUT/p/variants.tgz" -C "$OUT/t" && grep -h -A2 "h128/q1" "$OUT"/t/probe_V87A-trace*_1.log | head -12
