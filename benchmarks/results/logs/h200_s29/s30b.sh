#!/usr/bin/env bash
# s30b (prepared in the twenty-ninth session, not yet run; with exp-sglang-rope-apart merged or checked out): SGLang
# serving at 32 layers with every built-in at once: ours, flashmla, flashinfer, triton, the six cells, 3 interleaved
# rounds, medians. This is issue 10's SGLang table with the adapter that takes the RoPE columns apart. Four servers
# share --mem-fraction 0.72 (0.18 each). SGLang 0.5.17 sizes a server's KV pool as fraction x (the GPU memory free
# before it loads) - its weights (kv_cache_configurator._profile_available_bytes), so each later server gets less:
# ~22.9, 18.0, 14.1 and 10.8 GB, the last (triton) just above the ~10 GB that 64 x 4096 or 16 x 16384 tokens plus
# their decode need (36.9 KB a token at 32 layers); at 0.5 it would get ~7.8 GB. ~59 GB stay free for the prefills.
# It takes two calls: run this twice back to back on one warm machine (carry .bundle-sglang and .jit-sglang); the
# second call stops the first's servers, starts them again and measures the cells the first did not finish
# (bench_serving keeps each finished point in its workdir in /tmp). Predicted: ours >= every built-in in every cell;
# 4096 x 1 ~1.02x flashinfer (0.985x before the branch), 4096 x 64 ~1.03x flashmla.
SERVING_ARGS="--interleave --mem-fraction 0.72 --repeats 3 --sglang-backends mla_backend,flashmla,flashinfer,triton" \
    JIT_CACHE_IN=.jit-sglang STAGE_TIMEOUT=560 timeout -s KILL 590 bash integration_tests/run_gpu.sh .bundle-sglang \
    "$OUT/run" serving-sglang 2>&1 | grep -v "INFO\|kill_process" | tail -25
grep -v "INFO\|kill_process" "$OUT"/run/serving-sglang.log | grep "up in\|decode tok/s\|resuming" | tail -30
tar -czf "$OUT/run.tgz" -C "$OUT" run && rm -rf "$OUT/run"
