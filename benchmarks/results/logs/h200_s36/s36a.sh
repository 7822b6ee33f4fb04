#!/usr/bin/env bash
# s36a (prepared in the thirty-fifth session, not run): where fp8 row halves stop paying beyond 16 requests, after
# s35k found them 15% faster at b32/s1024/h32 and b64/s1024/h32, 8% at b32/s2048, 5.6% at b64/s2048/h16/q2, level at
# b32/s4096, and 9.5% / 14% slower at b128/s1024 and b128/s4096. Before the call, here:
#   git checkout -b exp-rowhalves-128 main && git am benchmarks/results/logs/h200_s35/s35k/rowhalves128.patch
#   git checkout main && bash benchmarks/variant_trees.sh .variants/s36/trees main:main-nocheck \
#       exp-rowhalves-128:ROWH128-nocheck
#   mkdir -p .variants/s36/wheels && pip download --no-deps nvidia-cutlass==4.2.0.0 -d .variants/s36/wheels
# Predicted: at b32 the halves lose from ~s8192 (62 blocks a part: +5..+10%), at b64 from ~s4096 (+5..+10%); b48 in
# between. If so, FP8_ROW_HALVES_MAX_BATCH = 64 trades 5-15% on short contexts for 5-10% on long ones: the choice
# is then a device-side one (the metadata kernel sees the blocks a part; both plans launch 132 CTAs).
set -uo pipefail
T=.variants/s36/trees
C=b32/s4096/h32/q1,b32/s8192/h32/q1,b32/s16384/h32/q1,b48/s2048/h32/q1,b48/s4096/h32/q1,b64/s2048/h32/q1
C=$C,b64/s4096/h32/q1,b64/s8192/h32/q1,b64/s4096/h16/q2,b96/s1024/h32/q1
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s36/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
TESTS=none PROBE_ARGS="--kv fp8" PROBE_TIMEOUT=90 ROUNDS=2 timeout -s KILL 300 bash benchmarks/probe_variants.sh \
    "$OUT/fp8" "$C" $T/main-nocheck $T/ROWH128-nocheck > "$OUT/fp8.log" 2>&1
echo "fp8 rc=$?"; tail -n 10 "$OUT/fp8.log"
