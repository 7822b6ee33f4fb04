#!/usr/bin/env bash
# s39f: the SGLang fp8 serving cell s38h's time cut: 32768-token prompts, one at a time, SGLang 0.5.17 on an fp8 KV
# cache at 32 layers (the 16-head checkpoint), ours (mla_backend), triton and flashinfer interleaved, 2 rounds.
# Results as serving_h200_long32k_fp8.* (s38h's cells stay in serving_h200_long_fp8.*). Carry .bundle-sglang.
# Predicted: ours ahead of both (16384 x 1: 1.62x triton; flashinfer ~55 ms a step).
SERVING_ARGS="--interleave --kv-cache-dtype fp8 --mem-fraction 0.6 --sglang-backends mla_backend,triton,flashinfer \
--prompt-lens 32768 --concurrency 1 --card h200_long32k --commit $1" STAGE_TIMEOUT=${STAGE_TIMEOUT:-470} \
    timeout -s KILL 530 bash integration_tests/run_gpu.sh .bundle-sglang "$OUT/run" serving-sglang 2>&1 \
    | grep -v "INFO\|kill_process" | tail -8
grep -v "INFO\|kill_process" "$OUT"/run/serving-sglang.log | grep "up in\|decode tok/s\|resuming\|FAILED" | tail -30
ls "$OUT"/run/serving
tar -czf "$OUT/run.tgz" -C "$OUT" run && rm -rf "$OUT/run"
