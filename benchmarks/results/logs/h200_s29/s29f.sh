#!/usr/bin/env bash
# s29f (run with branch exp-sglang-rope-apart checked out): the SGLang adapter with the RoPE columns apart
# (DeepSeek's absorbed path hands our backend q_nope / q_pe and k_nope / k_pe as it does FlashInfer, instead of
# concatenating both every layer) in the real SGLang 0.5.17 on the H200: the TP 1 e2e (teacher-forced logprobs vs
# flashmla, greedy agreement, tiny-model decode tok/s). The adapter's CPU tests already passed there (sglang-unit, 51
# passed, twenty-ninth session call 3). Carry .bundle-sglang and .jit-sglang (the compile caches of s28b: with the
# bundle's files now unpacked at the archive's fixed mtime, FlashInfer's ninja should find its restored builds up to
# date, predicted: the first server up in ~100-150 s instead of 231-286). ~8.5 min at most; cut short, it resumes in
# a next call on the same warm machine (run_gpu.sh now stops the servers a cut call left).
JIT_CACHE_IN=.jit-sglang STAGE_TIMEOUT=540 timeout -s KILL 590 bash integration_tests/run_gpu.sh .bundle-sglang \
    "$OUT/run" sglang-tp1 2>&1 | grep -v "INFO\|kill_process" | tail -8
grep -h "restored" "$OUT"/run/env.log
grep -h "up in\|passed\|failed" "$OUT"/run/e2e_sglang-tp1.log | tail -6
