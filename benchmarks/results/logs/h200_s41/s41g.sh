#!/usr/bin/env bash
# s41g: the memory-bound rows sustained. s41a found the 17-32-row fp8 row at the 700 W cap when replayed for seconds
# (1.03x FlashMLA fp8 against the grid's 1.11x). Here main's 16-128-head bf16 rows against every bf16 peer the grid
# has (the bursty grid: 1.01-1.02x flashinfer_mla) and the two memory-bound fp8 rows against FlashMLA fp8, each
# implementation alone for 3 s under nvidia-smi, outputs checked (power_probe.py). Predicted: the bf16 rows below the
# cap or level with it (HBM-bound: ratios as in the grid, +-2%); fp8 h16 at or near the cap, ratio 1.3-1.4x.
# Setup: carry .peers and .variants/s41/wheels.
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s41/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD MLA_BACKEND_CACHE=/tmp/ext-main
timeout 300 python3 -c "from mla_backend import _build; _build.load_extension()" > "$OUT/build.log" 2>&1
echo "build rc=$?"
timeout -s KILL 200 python3 benchmarks/power_probe.py --peers .peers --names mla_backend,flashinfer_mla,fa3_mla,flashmla \
    --configs b128/s4096/h16/q1,b128/s4096/h32/q1,b128/s4096/h64/q1,b64/s16384/h16/q1 --seconds 3 \
    > "$OUT/power_bf16.log" 2>&1
echo "bf16 rc=$?"; grep -E '^b[0-9]' "$OUT/power_bf16.log"
timeout -s KILL 120 python3 benchmarks/power_probe.py --peers .peers --kv fp8 --names mla_backend,flashmla_fp8 \
    --configs b128/s4096/h16/q1,b64/s16384/h16/q1 --seconds 3 > "$OUT/power_fp8.log" 2>&1
echo "fp8 rc=$?"; grep -E '^b[0-9]' "$OUT/power_fp8.log"
