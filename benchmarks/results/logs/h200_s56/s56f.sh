#!/usr/bin/env bash
# s56f: the narrow (16-row) kernel's start. V180 (exp-v180-first-page-l2-prefetch: one producer thread bulk-prefetches
# the part's first page into L2 as soon as it knows it, before the 36 cp.async a thread) and V181
# (exp-v181-first-page-hint-before-wait: V180 + that page guessed from the plan as read before griddepcontrol.wait,
# a diagnostic of what starting DRAM ~0.8 us earlier is worth) against main 21e3fb4. Trees: bash
# benchmarks/variant_trees.sh .variants/s56/trees main:MAIN-nocheck exp-v180-first-page-l2-prefetch:V180
#   exp-v181-first-page-hint-before-wait:V181; carry .variants/s56, .variants/s49.
bash benchmarks/results/logs/h200_s56/probe.sh \
  b8/s8192/h16/q1,b8/s8192/h16/q1/varlen,b4/s4096/h16/q1,b32/s1024/h16/q1,b1/s32768/h16/q1,b64/s2048/h16/q2,b128/s4096/h16/q1 \
  MAIN-nocheck V180 V181
