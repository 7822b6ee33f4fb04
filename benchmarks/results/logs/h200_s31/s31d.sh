#!/usr/bin/env bash
# s31d (thirty-first session): SGLang at 32 layers, ours and triton alone at --mem-fraction 0.45, the three
# one-request cells, 3 interleaved rounds: triton's 32768 x 1, which s30b did not reach, and a results file for its
# closest cells (s30b: triton 0.56x ours at 4096 x 1, 0.34x at 16384 x 1; 0.10-0.22x at 16 and 64 requests, logs
# only). Predicted: ours / triton ~1.8x, ~3x, ~4x at 4096, 16384, 32768 (its kernel 4-10x ours; at one request the
# host's ~2 ms a step is shared).
SERVING_ARGS="--interleave --mem-fraction 0.45 --repeats 3 --concurrency 1 --sglang-backends mla_backend,triton" \
    JIT_CACHE_IN=.jit-sglang STAGE_TIMEOUT=${STAGE_TIMEOUT:-300} timeout -s KILL 350 \
    bash integration_tests/run_gpu.sh .bundle-sglang "$OUT/run" serving-sglang 2>&1 | grep -v "INFO\|kill_process" | tail -8
grep -v "INFO\|kill_process" "$OUT"/run/serving-sglang.log | grep "up in\|decode tok/s\|resuming\|FAILED" | tail -30
ls "$OUT"/run/serving
tar -czf "$OUT/run.tgz" -C "$OUT" run && rm -rf "$OUT/run"
