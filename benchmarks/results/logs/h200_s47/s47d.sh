#!/usr/bin/env bash
# s47d: s47c left V146N (no vote after a request's first block) only at parity with main at h32 and +7..12% where
# pieces are short, against D4's -5.9..-2.4%: a large cost per piece (~3 us fitted over the four rows) plus the
# structure's per-block costs. v147 (branch exp-v147-swap32-rs) keeps v146's softmax but reads P8's A registers from
# the P8^T buffer with ldmatrix in both warpgroups: P.V back to RS (as main), no proxy fence after the P stores, and
# warpgroup 1 releases the buffer before its P.V (v146 held it until its P.V completed). Diagnostics: V147N (no vote
# after the first block) and V147Z (no slow block at all, base 0 from the start: outputs wrong); V147N - V147Z is the
# first block's slow path, per piece. D4 for reference. fp8 tests on V147.
# Predicted: V147Z ~ D4 + 1% (the stmatrix / ldmatrix exchange in place of the quads); V147N - V147Z < 1 us on the
# short-piece rows unless the slow path itself stalls; V147 between V147N and V146.
# Trees (here): bash benchmarks/variant_trees.sh .variants/s47/trees exp-v147-swap32-rs:V147
# exp-v147n-never-vote:V147N-nocheck exp-v147z-no-slow-path:V147Z-nocheck. Carry .variants/s47.
set -uo pipefail
T=.variants/s47/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s47/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite
C8=b128/s4096/h32/q1,b64/s2048/h16/q2,b128/s1024/h32/q1,b8/s8192/h32/q1
TESTS=tests/test_kernel_fp8_gpu.py PROBE_ARGS="--kv fp8" PROBE_TEST_TIMEOUT=150 PROBE_TIMEOUT=60 ROUNDS=2 \
    timeout -s KILL 500 bash benchmarks/probe_variants.sh "$OUT/f" "$C8" $T/main-nocheck $T/D4-nocheck $T/V147 \
    $T/V147N-nocheck $T/V147Z-nocheck > "$OUT/f.log" 2>&1
echo "fp8 probe rc=$?"; grep -E "build|tests rc|FAILED|ERROR|Error" "$OUT/f.log" | head -20; tail -n 5 "$OUT/f.log"
