#!/usr/bin/env bash
# s34c: plan shapes for issue 12's small 16-row fp8 rows, measured from Python (no kernel change): the tile
# scheduler's plan (twice: first and last, for drift), no split (--plan whole), and the scheduler's plan for 33, 66
# and 100 parts instead of 132. Run from the repository root (a7ea5f1); carry .variants/s34 (the cutlass wheel).
set -uo pipefail
C=b32/s1024/h16/q1,b4/s4096/h16/q1,b8/s8192/h16/q1,b1/s32768/h16/q1,b64/s2048/h16/q2,b16/s2048/h16/q1
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s34/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
timeout 300 python3 -c "from mla_backend import _build; _build.load_extension()" > "$OUT/build.log" 2>&1
echo "build rc=$?"
i=0
for args in "" "--plan whole" "--parts 33" "--parts 66" "--parts 100" ""; do
    i=$((i + 1))
    timeout -s KILL 90 python3 benchmarks/probe_decode.py --kv fp8 --configs "$C" $args > "$OUT/probe_$i.log" 2>&1
    echo "== $i: ${args:-scheduler} rc=$?"; grep -E "^b[0-9]" "$OUT/probe_$i.log" | cut -c1-200
done
