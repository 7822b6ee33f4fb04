#!/usr/bin/env bash
# s46b (prepared in the forty-fifth session, not run): the SGLang 0.5.17 e2e at TP 1 on an fp8 KV cache
# (`--kv-cache-dtype fp8_e4m3`) with the current kernels: the last engine run on fp8 was at 2a85d5b, and the folded
# fp8 tile, its lazy max (v135b), v140, v142 and v143 have since changed the kernels the engine calls (covered by the
# GPU kernel tests at each landing, not by an engine). The e2e serves the tiny checkpoint with flashmla, triton and
# mla_backend in turn (CUDA graphs) and compares teacher-forced logprobs and greedy agreement. Carry .bundle-sglang
# (41 MB; `mla-backend bundle build --recipe sglang-0.5.17 --out .bundle-sglang` here). No compile cache travels: the
# first server compiles FlashInfer's and inductor's kernels (~3-4 min). Predicted: 6 passed (2a85d5b: 6 passed in
# 264 s; ours vs flashmla-fp8 max |dlogprob| ~0.15, as triton-fp8's). Argument: the commit under test. ~9 min at most;
# cut short, the stage resumes in a next call on the same warm machine.
MLA_E2E_KV_CACHE_DTYPE=fp8_e4m3 STAGE_TIMEOUT=540 timeout -s KILL 585 bash integration_tests/run_gpu.sh \
    .bundle-sglang "$OUT/run" sglang-tp1 2>&1 | grep -v "INFO\|kill_process" | tail -8
grep -h "up in\|passed\|failed" "$OUT"/run/e2e_sglang-tp1.log | tail -6
echo "commit $1"
