#!/usr/bin/env bash
# s35f: issue 9's bf16 grid (bench_decode --issue-grid, every vLLM 0.26 peer and FlashInfer's MLA wrapper; sgl-kernel's
# FlashMLA is not in this bundle, see h200_issue_grid_sglang.md for it) on main 3e0025f (v98-v100a). Carry .peers
# (`python benchmarks/peers_bundle.py --out .peers`, FlashInfer included) and .variants (the cutlass wheel).
# Predicted (s35b-s35d probes): the small batches 5-9% faster than e20da3c's table (b4/s4096/h16 17.2 -> ~15.7, vs
# FA3-MLA ~1.3x; b32/s1024 21.0 -> ~19.5), the h128 rows level.
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s35/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
timeout -s KILL 500 python3 benchmarks/bench_decode.py --issue-grid --peers .peers --card h200 --commit 3e0025f \
    --out-dir "$OUT/r" > "$OUT/bench.log" 2>&1
echo "bench rc=$?"; sed -n '/Ours vs the best peer/,/Geomean/p' "$OUT"/r/*.md
