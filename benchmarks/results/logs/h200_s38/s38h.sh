#!/usr/bin/env bash
# s38h: the two SGLang fp8 serving cells s36e's time cut (16384 x 16 and 32768 x 1; 16384 x 1 again, it comes with
# the prompt lengths): SGLang 0.5.17 on an fp8 KV cache at 32 layers (the 16-head checkpoint), ours (mla_backend),
# triton and flashinfer interleaved, 2 rounds. Results as serving_h200_long_fp8.* (s36e's four cells stay in
# serving_h200_fp8_sglang_triton_flashinfer.*). Carry .bundle-sglang. Predicted: ours ahead of both in every cell
# (s36e: 1.37-4.21x triton; flashinfer ~55 ms a step at every batch).
SERVING_ARGS="--interleave --kv-cache-dtype fp8 --mem-fraction 0.6 --sglang-backends mla_backend,triton,flashinfer \
--prompt-lens 16384 32768 --concurrency 1 16 --card h200_long --commit $1" STAGE_TIMEOUT=${STAGE_TIMEOUT:-470} \
    timeout -s KILL 530 bash integration_tests/run_gpu.sh .bundle-sglang "$OUT/run" serving-sglang 2>&1 \
    | grep -v "INFO\|kill_process" | tail -8
grep -v "INFO\|kill_process" "$OUT"/run/serving-sglang.log | grep "up in\|decode tok/s\|resuming\|FAILED" | tail -30
ls "$OUT"/run/serving
tar -czf "$OUT/run.tgz" -C "$OUT" run && rm -rf "$OUT/run"
