#!/usr/bin/env bash
# s29e: s29b and s29d of the twenty-eighth session's kit in one call, as a screen: main, v83a (combine: the 8-warp CTA
# merges all 512 columns), v84 at 2 and 4 blocks (the 64-row kernel's minimum part) and the pair v83a + v84 at 4
# (V83AM4: the V84M4 tree with v83a's mla_combine.cu), no test suites (probe_decode checks every output against the
# fp32 reference right after capture and after the timed replays), 2 interleaved rounds. Predicted (PERF_NOTES):
# v83a -5..-6 us on the 16-split shapes (b8/s1024/h64/q1, b8/s1024/h16/q4, b1/s1024/h128/q4); v84 at 4 there
# 23.4-24.4 -> ~15-17 us, b1/s4096/h128 17.5 -> 16-20; the pair at least as good as the better of the two.
# Carry .variants. ~7 min.
C=b8/s1024/h64/q1,b8/s1024/h16/q4,b1/s1024/h128/q4,b8/s1024/h128/q1,b1/s4096/h128/q1,b1/s2048/h128/q1,\
b16/s1024/h128/q1,b4/s4096/h64/q1,b16/s4096/h128/q1,b1/s32768/h128/q1,b1/s32768/h16/q1,b4/s4096/h16/q1,\
b8/s8192/h16/q1,b32/s1024/h16/q1
TESTS=none bash benchmarks/results/logs/h200_s28/s29probe.sh "$C" main V83A V84M2 V84M4 V83AM4
