#!/usr/bin/env bash
# s24h: HEAD vs HEAD with 943e90d's combine (7c08678 changed the combine's machine code, which its message denied):
# 3 interleaved probe rounds on the rows whose combine runs.
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .dev/nvidia_cutlass*.whl >/dev/null 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
mkdir -p "$OUT/p"
PROBE_TIMEOUT=60 ROUNDS=3 timeout -s KILL 300 bash benchmarks/probe_variants.sh "$OUT/p" \
    b4/s4096/h16/q1,b8/s8192/h16/q1,b32/s1024/h16/q1,b1/s32768/h128/q1,b16/s4096/h128/q1,b64/s2048/h16/q2 \
    .variants/trees/main-nocheck .variants/trees/C943-nocheck > "$OUT/p.log" 2>&1
echo "probe rc=$?"; tail -n 6 "$OUT/p.log"
