#!/usr/bin/env bash
# s35e: issue 12's fp8 grid (bench_decode --fp8-grid: ours on the fp8 cache, ours bf16, vLLM 0.26's FlashMLA fp8,
# every output checked in the same process) on main with v98, v99 and v100a merged (3e0025f), then every GPU test
# from the repository root. Carry .peers (`python benchmarks/peers_bundle.py --out .peers --no-flashinfer`) and
# .variants (the cutlass wheel).
# Predicted (s35a-s35d probes): b32/s1024/h16 ~17.3 us (1.2x FlashMLA fp8 met if it stays at ~21.7), b4 ~15.5 (needs
# 15.2: missed by ~0.3), b8 ~25.3 (needs 23.1), b128/s4096/h16 ~79-80 (1.8x our bf16: bf16 got ~1% faster too).
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s35/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
timeout -s KILL 330 python3 benchmarks/bench_decode.py --fp8-grid --peers .peers --card h200 --commit 3e0025f \
    --out-dir "$OUT/r" > "$OUT/bench.log" 2>&1
echo "bench rc=$?"; sed -n '/## fp8 KV cache/,/Targets met/p' "$OUT"/r/*.md | head -30
timeout -s KILL 200 python3 -m pytest -q -m gpu -p no:cacheprovider tests > "$OUT/all_gpu_tests.log" 2>&1
echo "gpu tests rc=$?"; tail -n 3 "$OUT/all_gpu_tests.log"
