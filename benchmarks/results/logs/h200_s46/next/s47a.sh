#!/usr/bin/env bash
# s47a (prepared in the forty-sixth session, compiled here, not run): D4 against main, outputs unchecked. D4 (branch
# exp-d4-swap-qk-knockout) is the folded fp8 tile with the Q.K^T a 32-row swap-AB tile would run: S^T = K8 Q8^T as 18
# m64n32k32 SS (3 KB of operands a k-step instead of 4: 432 pipe cycles a block instead of 576 by the wgmma rule of
# benchmarks/results/h200_wgmma_rates.md), its 16 values a thread copied into S twice; the rest is main's (0 spills,
# 18 QGMMA.64x32x32 + 18 .64x64x32 in SASS, the latter the unfolded instantiation's). Its time is the folded tile's
# with the cheapest Q.K^T 32 rows can have and no other cost of a new tile. Predicted: h32 -3..-5% (144 cycles of a
# ~2,900-cycle block if the chain pays all of Q.K^T's pipe time, as the -17% knockout says), q2 and b128/s1024 alike.
# If D4 gains < 4% at h32, no swap-AB tile reaches 1.2x FlashMLA fp8 there (it also pays a cross-warp softmax and
# P^T stores). Trees first (here): bash benchmarks/variant_trees.sh .variants/s47/trees main:main-nocheck
# exp-d4-swap-qk-knockout:D4-nocheck; copy the cutlass wheel to .variants/s47/wheels. Carry .variants/s47.
set -uo pipefail
T=.variants/s47/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s47/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite
C8=b128/s4096/h32/q1,b64/s2048/h16/q2,b128/s1024/h32/q1,b8/s8192/h32/q1
TESTS=none PROBE_ARGS="--kv fp8" PROBE_TIMEOUT=60 ROUNDS=3 timeout -s KILL 300 bash benchmarks/probe_variants.sh \
    "$OUT/f" "$C8" $T/main-nocheck $T/D4-nocheck > "$OUT/f.log" 2>&1
echo "diag probe rc=$?"; grep -E "build|FAILED|ERROR|Error" "$OUT/f.log" | head; tail -n 5 "$OUT/f.log"
