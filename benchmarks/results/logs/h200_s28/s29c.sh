#!/usr/bin/env bash
# s29c (prepared in the twenty-eighth session, not yet run): SGLang serving at 32 layers, ours against flashinfer and
# triton at once, 3 rounds a point, medians (bench_serving's statistic since 8e27920). Why: issue 10 asks for every
# built-in backend at 32 layers; flashinfer's only 32-layer run (8a061cf, best of 2) has 4096 x 1 at 0.999x by
# median, and triton was served only at 12 layers. Three servers share --mem-fraction 0.45. The first SGLang server
# of a machine took 177-182 s to start in the twenty-eighth session (the restored compile caches did not shorten it),
# so this may need STAGE_TIMEOUT near the call's limit. Carry .bundle-sglang only (with .variants it is over the
# 64 MiB carry limit). ~9 min.
SERVING_ARGS="--interleave --mem-fraction 0.45 --repeats 3 --sglang-backends mla_backend,flashinfer,triton" \
    STAGE_TIMEOUT=560 timeout -s KILL 590 bash integration_tests/run_gpu.sh .bundle-sglang "$OUT/run" serving-sglang \
    2>&1 | grep -v "INFO\|kill_process" | tail -25
tar -czf "$OUT/run.tgz" -C "$OUT" run && rm -rf "$OUT/run"
