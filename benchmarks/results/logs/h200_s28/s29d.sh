#!/usr/bin/env bash
# s29d (prepared in the twenty-eighth session, not yet run): v84, the 64-row kernel's parts at least 2, 4 or 8 KV
# blocks, against main: each tree's bf16 kernel tests (the GPU plan == Python mirror test among them), then 2
# interleaved probe rounds. Why: at b8/s1024/h64/q1 main runs 128 parts of one block (64-row kernel 11.5 us, then a
# 16-way combine 10.3 us); sgl-kernel's FlashMLA (same scheduler constants as vLLM's: 5 blocks of overhead a split)
# takes 18.9 us. Predicted (PERF_NOTES): V84M4 at b8/s1024/h64/q1, b8/s1024/h16/q4 and b1/s1024/h128/q4 23.4-24.4 ->
# ~15-17 us; b1/s4096/h128 (16 parts of 4 blocks instead of 64 of 1) the risk: 17.5 -> 16-20; nothing from b16/s4096 up.
# Local first: s29dprep.sh. Carry .variants. ~6 min.
C=b8/s1024/h64/q1,b8/s1024/h16/q4,b1/s1024/h128/q4,b8/s1024/h128/q1,b1/s4096/h128/q1,b1/s2048/h128/q1,\
b16/s1024/h128/q1,b4/s4096/h64/q1,b16/s4096/h128/q1,b1/s32768/h128/q1
bash benchmarks/results/logs/h200_s28/s29probe.sh "$C" main V84M2 V84M4 V84M8
