#!/usr/bin/env bash
# s30b (prepared in the twenty-ninth session, not yet run; with exp-sglang-rope-apart merged or checked out): SGLang
# serving at 32 layers with every built-in at once: ours, flashmla, flashinfer, triton, the six cells, 3 interleaved
# rounds, medians. This is issue 10's SGLang table with the adapter that takes the RoPE columns apart. Four servers
# share --mem-fraction 0.5 (0.125 each: 17.6 GB, of which the checkpoint takes 2.5 and 64 x 4096 tokens' cache 9.7).
# It takes two calls: run this twice back to back on one warm machine (carry .bundle-sglang and .jit-sglang); the
# second call stops the first's servers, starts them again and measures the cells the first did not finish
# (bench_serving keeps each finished point in its workdir in /tmp). Predicted: ours >= every built-in in every cell;
# 4096 x 1 ~1.02x flashinfer (0.985x before the branch), 4096 x 64 ~1.03x flashmla.
SERVING_ARGS="--interleave --mem-fraction 0.5 --repeats 3 --sglang-backends mla_backend,flashmla,flashinfer,triton" \
    JIT_CACHE_IN=.jit-sglang STAGE_TIMEOUT=560 timeout -s KILL 590 bash integration_tests/run_gpu.sh .bundle-sglang \
    "$OUT/run" serving-sglang 2>&1 | grep -v "INFO\|kill_process" | tail -25
grep -v "INFO\|kill_process" "$OUT"/run/serving-sglang.log | grep "up in\|decode tok/s\|resuming" | tail -30
tar -czf "$OUT/run.tgz" -C "$OUT" run && rm -rf "$OUT/run"
