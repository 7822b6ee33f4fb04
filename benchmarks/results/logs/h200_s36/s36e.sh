#!/usr/bin/env bash
# s36e: SGLang 0.5.17 serving on an fp8 KV cache (`--kv-cache-dtype fp8_e4m3`) at 32 layers (the 16-head
# checkpoint), ours (mla_backend), triton and flashinfer interleaved, the six cells, 2 rounds: the SGLang side of
# issue 12's serving target against the fp8 options s28c left out (flashmla's is in serving_h200_fp8_sglang.md).
# Carry .bundle-sglang (`mla-backend bundle build --recipe sglang-0.5.17 --out .bundle-sglang` here). No compile
# cache travels: the first start compiles FlashInfer's and inductor's kernels (~3-4 min, the servers in parallel).
# A cut run keeps the points it finished. Predicted: ours 1.5-5x triton (its kernel 4-10x ours in bf16) and 1.2-3x
# flashinfer (which serves an fp8 MLA cache by converting it for its kernel) in every cell.
SERVING_ARGS="--interleave --kv-cache-dtype fp8 --mem-fraction 0.6 --sglang-backends mla_backend,triton,flashinfer \
--commit $1" STAGE_TIMEOUT=${STAGE_TIMEOUT:-540} timeout -s KILL 585 \
    bash integration_tests/run_gpu.sh .bundle-sglang "$OUT/run" serving-sglang 2>&1 | grep -v "INFO\|kill_process" | tail -8
grep -v "INFO\|kill_process" "$OUT"/run/serving-sglang.log | grep "up in\|decode tok/s\|resuming\|FAILED" | tail -30
ls "$OUT"/run/serving
tar -czf "$OUT/run.tgz" -C "$OUT" run && rm -rf "$OUT/run"
