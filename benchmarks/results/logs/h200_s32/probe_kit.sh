#!/usr/bin/env bash
# The thirty-second session's probe kits in one (run on the device from the repository root, carrying .variants/s33):
#   bash benchmarks/results/logs/h200_s32/probe_kit.sh TREE...
# Kernel tests (tests/test_kernel_gpu.py, memcheck included) of every tree whose name does not end in -nocheck, then
# 2 interleaved probe rounds of the 128-head rows; MLA_TRACE_PHASES=1 makes the trace trees print their phases.
set -uo pipefail
T=.variants/s33/trees
C=b128/s4096/h128/q1,b128/s4096/h128/q2,b132/s8192/h128/q2,b64/s4096/h128/q1,b16/s4096/h128/q1,b1/s32768/h128/q1
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s33/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD MLA_TRACE_PHASES=1
TREES=()
for name in "$@"; do TREES+=("$T/$name"); done
TESTS="./tests/test_kernel_gpu.py" PROBE_TEST_TIMEOUT=150 PROBE_TIMEOUT=80 ROUNDS=2 timeout -s KILL 520 \
    bash benchmarks/probe_variants.sh "$OUT/p" "$C" "${TREES[@]}" > "$OUT/p.log" 2>&1
echo "probe rc=$?"; grep -E "tests rc|FAILED" "$OUT/p.log" | head -8; tail -n 7 "$OUT/p.log"
mkdir -p "$OUT/t" && tar -xzf "$OUT/p/variants.tgz" -C "$OUT/t" && grep -h -A2 "^b128/s4096/h128/q1" "$OUT"/t/probe_*trace*_1.log
exit 0
