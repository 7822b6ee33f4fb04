#!/usr/bin/env bash
# s26d: SGLang 0.5.17 serving, 32-layer generated checkpoint, mla_backend / flashmla / flashinfer served at once
# (--interleave), from the carried .bundle-sglang.
SERVING_ARGS="--interleave --num-layers 32 --sglang-backends mla_backend,flashmla,flashinfer" STAGE_TIMEOUT=540 \
    timeout -s KILL 585 bash .variants/sg.sh serving-sglang; echo "rc=$?"
