#!/usr/bin/env bash
# s23a: power probe at b132 (first GPU run of benchmarks/power_probe.py) + wide diagnostics on v64.
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .dev/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
python3 benchmarks/wide_diagnostics.py . /tmp/wd > "$OUT/wd_make.log" 2>&1
python3 -c "from mla_backend import _build; _build.load_extension()" > "$OUT/build.log" 2>&1
echo "build rc=$?"
timeout -s KILL 150 python3 benchmarks/power_probe.py --peers .peers --seconds 3 > "$OUT/power_probe.log" 2>&1
echo "power_probe rc=$?"; tail -n 30 "$OUT/power_probe.log"
PROBE_TIMEOUT=120 ROUNDS=2 timeout -s KILL 330 bash benchmarks/probe_variants.sh "$OUT" \
    b132/s8192/h128/q2,b128/s4096/h128/q1,b128/s4096/h64/q1 /tmp/wd/wide-*-nocheck > "$OUT/wd_probe.log" 2>&1
echo "wd rc=$?"; tail -n 25 "$OUT/wd_probe.log"
