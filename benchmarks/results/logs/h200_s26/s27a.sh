#!/usr/bin/env bash
# s27a (prepared in the twenty-sixth session): SGLang 0.5.17 serving on the default (now 32-layer) checkpoint, ours
# and flashmla served at once with room for SGLang's prefill (--mem-fraction 0.45); s26d measured ours against
# flashinfer the same way. Carry .variants and .bundle-sglang. ~430 s expected (first server ~240 s: the checkpoint's
# generation, FlashInfer's prefill JIT; the second ~60 s; 6 points x 2 servers ~130 s).
SERVING_ARGS="--interleave --mem-fraction 0.45 --sglang-backends mla_backend,flashmla" STAGE_TIMEOUT=540 \
    timeout -s KILL 585 bash .variants/sg.sh serving-sglang; echo "rc=$?"
