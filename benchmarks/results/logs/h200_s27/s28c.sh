#!/usr/bin/env bash
# s28c (prepared in the twenty-seventh session, not yet run): SGLang serving on an fp8 KV cache (issue 12's serving
# target for SGLang; vLLM's fp8 run is in README "fp8 KV cache"): the 16-head checkpoint (DeepSeek-V3 at TP 8 as one
# GPU sees it; 32 layers), ours and flashmla (SGLang's fused fp8 path) at once; triton and flashinfer in a later call.
# Carry .variants and .bundle-sglang (with a restored compile cache, add JIT_CACHE_IN=.jit-sglang and carry it). ~400 s.
JIT_CACHE_OUT=$OUT/jit SERVING_ARGS="--kv-cache-dtype fp8 --interleave --mem-fraction 0.45 \
--sglang-backends mla_backend,flashmla" STAGE_TIMEOUT=540 timeout -s KILL 585 bash .variants/sg.sh serving-sglang
echo "rc=$?"
