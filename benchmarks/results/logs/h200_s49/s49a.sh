#!/usr/bin/env bash
# s49a (prepared in the forty-eighth session, run in the forty-ninth with main-noload-nocheck added): v149 (branch exp-v149-seesaw-rope-registers) against main and
# v148e, its 16-bit GPU tests first, and its noload twin. v149 is v148e with FlashMLA's shared-memory arrangement: Q's
# RoPE sub-tile in each warpgroup's registers (ldmatrix once a request; its four Q.K^T k-steps RS), so each block's
# RoPE sub-tile is read only by Q.K^T and is refilled with its stage's first group (A: 0-3 and 8 by warpgroup 0 after
# its P_A V_A; B: 4-8 by warpgroup 1 after its P_B V_B); P_B over Q's RoPE slot, P_A in its own 8 KB buffer (225.4 KB
# in all). 243 registers, no spills, no C75xx, 9 wgmma waits (compiled here, nvcc 13.0).
# Predicted: v149 -1..-3% against v148e on the 128-head rows (8 KB fewer shared reads a block and warpgroup, and the
# RoPE sub-tiles refilled a P.V earlier); still behind main at b128/s4096/h128/q1 unless its noload twin gains more
# than v148e's 3%. s48e: main 234.3, v148e 247.6, v148e-noload 233.9 at h128/q1.
# Trees first (here): bash benchmarks/variant_trees.sh .variants/s49/trees main:main-nocheck \
#   exp-v148-seesaw-release-order:V148E-nocheck exp-v149-seesaw-rope-registers:V149, then copy V149 to
#   V149-noload-nocheck and in its kernels/mla_decode_seesaw.cuh replace
#   "    mbar_arrive_expect_tx(full, kSubTileBytes);" by "    mbar_arrive_expect_tx(full, 0);\n    continue;";
#   the cutlass wheel into .variants/s49/wheels. Carry .variants/s49.
set -uo pipefail
T=.variants/s49/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s49/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite
C=b128/s4096/h128/q1,b128/s4096/h128/q2,b132/s8192/h128/q2,b16/s4096/h128/q1,b1/s32768/h128/q1
PROBE_TEST_TIMEOUT=200 PROBE_TIMEOUT=90 ROUNDS=2 \
    timeout -s KILL 500 bash benchmarks/probe_variants.sh "$OUT/a" "$C" $T/main-nocheck $T/V148E-nocheck $T/V149 \
    $T/V149-noload-nocheck $T/main-noload-nocheck > "$OUT/a.log" 2>&1
echo "probe rc=$?"; grep -E "tests rc|FAILED|ERROR|Error" "$OUT/a.log" | head -10; tail -n 6 "$OUT/a.log"
