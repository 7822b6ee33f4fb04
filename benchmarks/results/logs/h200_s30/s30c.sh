#!/usr/bin/env bash
# s30c (thirtieth session, the session's last 296 device seconds, on a fresh machine): s30b's flashinfer server
# disconnected on the first point of each call that asked it for 64 x 4096 or 16 x 16384 prompt tokens (four
# servers at --mem-fraction 0.72), and the call's KILL came before the stage could copy its log. Here: ours and
# flashinfer alone at --mem-fraction 0.45, 4096 x 64 first, 2 rounds, a stage timeout that leaves time to copy the
# server logs. Carry .bundle-sglang and .jit-sglang.
SERVING_ARGS="--interleave --mem-fraction 0.45 --repeats 2 --sglang-backends mla_backend,flashinfer \
--prompt-lens 4096 16384 --concurrency 64 16" JIT_CACHE_IN=.jit-sglang STAGE_TIMEOUT=${STAGE_TIMEOUT:-200} \
    timeout -s KILL "${KILL_AFTER:-245}" bash integration_tests/run_gpu.sh .bundle-sglang "$OUT/run" serving-sglang \
    2>&1 | grep -v "INFO\|kill_process" | tail -8
grep -v "INFO\|kill_process" "$OUT"/run/serving-sglang.log | grep "up in\|decode tok/s\|FAILED" | tail -12
cp /tmp/mla_bench_serving/*/interleaved_points.json "$OUT/run/" 2>/dev/null
for f in "$OUT"/run/serving/*flashinfer*.log; do [ -f "$f" ] && grep -n "Error\|error\|memory\|Traceback" "$f" | tail -8; done
