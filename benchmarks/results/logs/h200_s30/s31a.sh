#!/usr/bin/env bash
# s31a (prepared in the thirtieth session, not yet run): SGLang serving at 32 layers, ours, flashmla and flashinfer,
# the six cells, 3 interleaved rounds, medians: the SGLang table of issue 10 with a results file. Run it twice back
# to back on one warm machine (carry .bundle-sglang and .jit-sglang; ~15 min in all); the second call resumes with
# the points the first did not finish. triton is left out: in s30b it ran every cell it reached at 0.10-0.56x ours
# (its kernel takes 4-10x ours), and a fourth server left less memory to the others: flashinfer's server died at
# both 262,144-token points as the third of four at 0.18 of the memory each. Here three at 0.2 each (~22, 19 and 15
# GB of KV; ~70 GB free for prefills). If flashinfer dies again, the results keep its earlier points and its error
# carries the end of its server's output (bench_serving since 07ed99a), and run_gpu.sh copies the server logs (the
# stage's timeout ends before the call's KILL). Predicted: ours / best built-in 1.05-1.44x as in s30b, 32768 x 1
# ~1.1x flashinfer.
SERVING_ARGS="--interleave --mem-fraction 0.6 --repeats 3 --sglang-backends mla_backend,flashmla,flashinfer" \
    JIT_CACHE_IN=.jit-sglang STAGE_TIMEOUT=${STAGE_TIMEOUT:-530} timeout -s KILL 590 \
    bash integration_tests/run_gpu.sh .bundle-sglang "$OUT/run" serving-sglang 2>&1 | grep -v "INFO\|kill_process" | tail -8
grep -v "INFO\|kill_process" "$OUT"/run/serving-sglang.log | grep "up in\|decode tok/s\|resuming\|FAILED" | tail -30
ls "$OUT"/run/serving
tar -czf "$OUT/run.tgz" -C "$OUT" run && rm -rf "$OUT/run"
