#!/usr/bin/env bash
# s38a (prepared in the thirty-seventh session, not run): v108 (`next/v108.patch` on main: P8's high and low parts
# through f16x2 in the 64-row fp8 kernel: per block and thread 64 F2FP + 16 HADD2 instead of 48 F2FP + 32 HADD2.F32
# + 32 FADD). Why: s37i's knockout without the low part's packing saved 7.4% at b128/s4096/h128 and 4.4-4.7% at h64
# and h32, where cutting full-rate and uniform instructions (v107) bought nothing: the chain is paced by its
# conversion-pipe instructions.
# Before the call, here:
#   git checkout -b exp-v108 main && git am benchmarks/results/logs/h200_s37/next/v108.patch && git checkout main
#   bash benchmarks/variant_trees.sh .variants/s38/trees main:main exp-v108:V108
#   mkdir -p .variants/s38/wheels && pip download --no-deps nvidia-cutlass==4.2.0.0 -d .variants/s38/wheels
# (carry .variants/s38). Predicted: h128 246 -> 237-241 (-2..-4%) if HADD2.F32 issues at the conversion rate, +1..+2%
# if it is full rate (then the 16 extra F2FP cost more than the 32 HADD2.F32 saved); h64/h32 about half that. Tests:
# the fp8 file in full (the parts' rounding changes: 2^8 p is rounded to f16 first).
set -uo pipefail
T=.variants/s38/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s38/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
C=b128/s4096/h128/q1,b128/s4096/h64/q1,b128/s4096/h32/q1,b16/s4096/h128/q1,b96/s2048/h16/q2,b64/s2048/h16/q2
TESTS="tests/test_kernel_fp8_gpu.py" PROBE_TEST_TIMEOUT=240 PROBE_ARGS="--kv fp8" PROBE_TIMEOUT=80 ROUNDS=2 \
    timeout -s KILL 450 bash benchmarks/probe_variants.sh "$OUT/p" "$C" $T/main $T/V108 > "$OUT/p.log" 2>&1
echo "rc=$?"; grep -E "tests rc|FAILED" "$OUT/p.log"; tail -n 7 "$OUT/p.log"
