#!/usr/bin/env bash
# s34e: issue 12's fp8 grid (bench_decode --fp8-grid: ours on the fp8 cache, ours bf16, vLLM 0.26's FlashMLA fp8,
# every output checked in the same process) on main with v92 and v93 merged (3492a37). Carry .peers (made here with
# `python benchmarks/peers_bundle.py --out .peers --no-flashinfer`) and .variants/s34 (the cutlass wheel).
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s34/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
timeout -s KILL 540 python3 benchmarks/bench_decode.py --fp8-grid --peers .peers --card h200 --out-dir "$OUT/r" \
    > "$OUT/bench.log" 2>&1
echo "bench rc=$?"; sed -n '/## fp8 KV cache/,/Targets met/p' "$OUT"/r/*.md
