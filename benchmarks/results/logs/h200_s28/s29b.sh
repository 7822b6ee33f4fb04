#!/usr/bin/env bash
# s29b (prepared in the twenty-eighth session, not yet run): the combine variants v83a (the 8-warp CTA merges a row's
# 512 columns: 4x fewer CTAs), v83c (8 partial rows in flight a lane in the one-warp shape) and v83ac against main, each
# tree's bf16 kernel GPU tests first, then 2 interleaved probe rounds. Why: the twenty-eighth session's probe
# (probe_short_contexts.log) has the combine ending 10.1-10.3 us after the 64-row kernel at b8/s1024/h64/q1,
# b8/s1024/h16/q4 and b1/s1024/h128/q4 (16 splits a request, 2048 combine CTAs of the 8-warp shape), against 5.1 us
# at b8/s1024/h128/q1 (8 splits, the one-warp shape); sgl-kernel's FlashMLA takes 18.9-19.7 us on those shapes, ours
# 23.4-24.4. Predicted (PERF_NOTES): v83a -5..-6 us on the three 16-split shapes, +-0.5 at b1/s32768/h16 and
# b4/s4096/h16, -0..-1 at b8/s8192/h16; v83c -0.5..-1 us at b8/s1024/h128/q1, nothing where splits <= 4. Local first: s29prep.sh. Carry .variants. ~6 min.
C=b8/s1024/h64/q1,b8/s1024/h16/q4,b1/s1024/h128/q4,b8/s1024/h128/q1,b1/s32768/h16/q1,b4/s4096/h16/q1,\
b8/s8192/h16/q1,b32/s1024/h16/q1,b1/s32768/h128/q1,b16/s4096/h128/q1
bash benchmarks/results/logs/h200_s28/s29probe.sh "$C" main V83A V83C V83AC
