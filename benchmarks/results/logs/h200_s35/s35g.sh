#!/usr/bin/env bash
# s35g: is the fp8 column split still the faster kernel for up to 8 requests of 16 rows after v98? v98 took 7% off
# the block split's short rows (b32/s1024) and 0.4-3% off the column split's. Trees: main-nocheck (3e0025f), NOCOL-nocheck
# (branch exp-nocol: kFp8ColumnSplitMaxBatch = 0, the block split at every batch). 2 interleaved probe rounds, fp8.
# Predicted: the column split still ahead by 0-4% where a part has 1-8 blocks (b1-b8 at 4096-8192 tokens a request);
# the block split level or ahead from ~16 blocks a part (b4/s16384, b8/s32768).
set -uo pipefail
T=.variants/s35/trees
C=b1/s32768/h16/q1,b2/s16384/h16/q1,b4/s4096/h16/q1,b8/s8192/h16/q1,b8/s2048/h16/q1,b4/s16384/h16/q1
C=$C,b8/s32768/h16/q1,b1/s4096/h16/q1,b4/s4096/h8/q2
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s35/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
TESTS=none PROBE_ARGS="--kv fp8" PROBE_TIMEOUT=80 ROUNDS=2 timeout -s KILL 300 bash benchmarks/probe_variants.sh \
    "$OUT/fp8" "$C" $T/main-nocheck $T/NOCOL-nocheck > "$OUT/fp8.log" 2>&1
echo "fp8 rc=$?"; tail -n 9 "$OUT/fp8.log"
