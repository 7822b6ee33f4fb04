#!/usr/bin/env bash
# s29g (with exp-sglang-rope-apart checked out): SGLang serving at 32 layers, prompt 4096 x 1 / 16 / 64, ours (the
# RoPE columns apart) against flashinfer, 3 interleaved rounds, medians. Predicted: two kernels a layer fewer (q's and
# k's concatenation), ~2-4 us a layer at one request: 4096 x 1 TPOT 3.22 -> ~3.12 ms (310 -> ~320 tok/s; flashinfer
# 315 in s29c); more at 64 requests (q's copy is 9.4 MB there). Run right after s29f on the same machine (its compile
# caches). Carry .bundle-sglang. ~5 min.
SERVING_ARGS="--interleave --mem-fraction 0.45 --repeats 3 --sglang-backends mla_backend,flashinfer --prompt-lens 4096" \
    STAGE_TIMEOUT=540 timeout -s KILL 580 bash integration_tests/run_gpu.sh .bundle-sglang "$OUT/run" serving-sglang \
    2>&1 | grep -v "INFO\|kill_process" | tail -25
grep -v "INFO\|kill_process" "$OUT"/run/serving-sglang.log | grep "up in\|decode tok/s" | tail -12
tar -czf "$OUT/run.tgz" -C "$OUT" run && rm -rf "$OUT/run"
