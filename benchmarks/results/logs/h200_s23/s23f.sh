#!/usr/bin/env bash
# s23f: v73b (combine in one memory round trip) vs main: kernel tests, 3 bf16 probe rounds, 2 fp8 rounds.
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .dev/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
PROBE_TIMEOUT=120 ROUNDS=3 timeout -s KILL 330 bash benchmarks/probe_variants.sh "$OUT" \
    b1/s32768/h16/q1,b4/s4096/h16/q1,b8/s8192/h16/q1,b32/s1024/h16/q1,b64/s2048/h16/q2,b1/s32768/h128/q1,b16/s4096/h128/q1,b128/s4096/h128/q1,b128/s4096/h128/q2 \
    .variants/trees/main-nocheck .variants/trees/v73b > "$OUT/probe.log" 2>&1
echo "rc=$?"; tail -n 10 "$OUT/probe.log"
mkdir -p "$OUT/fp8"
PROBE_ARGS="--kv fp8" TESTS=none PROBE_TIMEOUT=120 ROUNDS=2 timeout -s KILL 150 bash benchmarks/probe_variants.sh "$OUT/fp8" \
    b1/s32768/h16/q1,b4/s4096/h16/q1,b8/s8192/h16/q1,b32/s1024/h16/q1 \
    .variants/trees/main-nocheck .variants/trees/v73b > "$OUT/fp8/probe.log" 2>&1
echo "fp8 rc=$?"; tail -n 5 "$OUT/fp8/probe.log"
