#!/usr/bin/env bash
# s35k: fp8 row halves (17-32 rows as two 16-row block-split CTAs a part over half the parts) beyond 16 requests,
# after v98 made the block split faster. Trees: main-nocheck (a7548d7), ROWH128-nocheck (`exp-rowhalves-128`:
# FP8_ROW_HALVES_MAX_BATCH = 128; Python only, the kernels are main's; the probe checks every output). fp8, 2 rounds.
# Predicted: ahead where a part of the halves' plan holds few blocks (b32/s1024, 8 a part: -5..-15%; b64/s1024 and
# b32/s2048, 16: -3..-10%), level at ~31 (b64/s2048/q2, b128/s1024, b32/s4096), behind at 124 (b128/s4096: +10%).
set -uo pipefail
T=.variants/s35/trees
C=b32/s1024/h32/q1,b64/s1024/h32/q1,b32/s2048/h32/q1,b64/s2048/h16/q2,b128/s1024/h32/q1,b32/s4096/h32/q1
C=$C,b128/s4096/h32/q1
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s35/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
TESTS=none PROBE_ARGS="--kv fp8" PROBE_TIMEOUT=80 ROUNDS=2 timeout -s KILL 200 bash benchmarks/probe_variants.sh \
    "$OUT/fp8" "$C" $T/main-nocheck $T/ROWH128-nocheck > "$OUT/fp8.log" 2>&1
echo "fp8 rc=$?"; tail -n 7 "$OUT/fp8.log"
