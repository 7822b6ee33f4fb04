#!/usr/bin/env bash
# s28b (prepared in the twenty-seventh session, not yet run): SGLang serving on the 32-layer checkpoint, the three
# contested cells only (4096 x 16, 4096 x 64, 16384 x 16), ours and flashmla at once, 4 rounds each, to settle
# 4096 x 64 against flashmla (0.995x in two rounds; flashinfer is 1.01-1.04x behind ours there). Servers start on
# every core and are pinned once up (04bafa8). Carry .variants and .bundle-sglang; ~400 s expected on a fresh machine (first server's JIT ~150-240 s).
# The compile caches come back as $OUT/jit/jit-cache.tgz.part-*: keep them here in an ignored .jit-sglang/ and later
# SGLang calls can carry it with JIT_CACHE_IN=.jit-sglang (integration_tests/run_gpu.sh), if it fits beside the bundle.
JIT_CACHE_OUT=$OUT/jit SERVING_ARGS="--interleave --mem-fraction 0.45 --repeats 4 --prompt-lens 4096 16384 --concurrency 16 64 \
--sglang-backends mla_backend,flashmla" STAGE_TIMEOUT=540 timeout -s KILL 585 bash .variants/sg.sh \
    serving-sglang; echo "rc=$?"
