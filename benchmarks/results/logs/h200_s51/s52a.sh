#!/usr/bin/env bash
# s52a (prepared in the fifty-first session, not run): v161, the per-request merge (patches/v161.patch; branch
# exp-v161-per-request-merge, 0c92f36, in the checkout that made it). The 16-bit narrow kernel's CTA of a split piece
# adds one to a counter in the plan's spare fields of row num_splits[req] after its output is stored
# (red.release.gpu); the combine's units of that request, resident early through PDL, wait for the count
# (ld.acquire.gpu), read the partials through L2 and reset the counters as the last of them passes; every combine
# unit ends with griddepcontrol.wait. s51a's timeline: at b8/s8192/h16 the last part ends at 24.0 us, the grid-wide wait
# releases at 24.5 and the merges end 1.1-2.5 us later, all 512 (now 128) merges at once.
# Predicted: b8/s8192/h16 29.2 -> 27.8-28.5 us (its varlen twin likewise), b4/s4096 and b32/s1024 -0.5..-1 us, b1/s32768/h16
# -0.3..-1 us; rows of other kernels unchanged (their combine keeps the grid-wide wait). If it is level, the merges
# were not contended but latency-bound: time the flag path with the timeline (marks need re-basing on v161).
# Setup here (no GPU needed):
#   bash benchmarks/variant_trees.sh .variants/s52/trees main:main-nocheck main:V161 && \
#     (cd .variants/s52/trees/V161 && patch -p1 < ../../../../benchmarks/results/logs/h200_s51/patches/v161.patch)
#   the cutlass wheel in .variants/s49/wheels (pip download --no-deps nvidia-cutlass==4.2.0.0); carry .variants, .peers.
set -uo pipefail
T=.variants/s52/trees
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s49/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite
(cd $T/V161 && MLA_BACKEND_CACHE=/tmp/ext-V161 timeout -s KILL 200 python3 -m pytest -x -q -m gpu -p no:cacheprovider \
    tests/test_kernel_gpu.py tests/test_kernel_fp8_gpu.py > "$OUT/tests.log" 2>&1)
echo "tests rc=$?: $(tail -n 1 "$OUT/tests.log")"; grep -E "^(FAILED|ERROR)" "$OUT/tests.log" | head -5
C=b8/s8192/h16/q1,b8/s8192/h16/q1/varlen,b4/s4096/h16/q1,b1/s32768/h16/q1,b32/s1024/h16/q1,b32/s1024/h16/q1/varlen,b128/s4096/h16/q1,b64/s2048/h8/q2,b6/s8192/h32/q1
PROBE_TIMEOUT=90 TESTS=none ROUNDS=2 timeout -s KILL 240 bash benchmarks/probe_variants.sh "$OUT/p" "$C" \
    $T/main-nocheck $T/V161 > "$OUT/p.log" 2>&1
echo "probe rc=$?"; tail -n 10 "$OUT/p.log"
B=b8/s8192/h16/q1,b8/s8192/h16/q1/varlen,b4/s4096/h16/q1,b32/s1024/h16/q1/varlen,b1/s32768/h16/q1
BENCH_TIMEOUT=90 timeout -s KILL 300 bash benchmarks/bench_trees.sh "$OUT/bench" "$B" .peers \
    $T/main-nocheck:main $T/V161:v161 $T/main-nocheck:main | grep -E "^bench|^\| b[0-9/a-z]* \| [0-9]* \|"
cd "$OUT" && tar czf s52a.tgz p p.log pip.log bench tests.log && rm -rf p p.log bench
