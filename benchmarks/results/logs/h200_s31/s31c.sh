#!/usr/bin/env bash
# s31c (thirty-first session): SGLang at 32 layers, ours and flashinfer alone at --mem-fraction 0.45, the six cells,
# 3 interleaved rounds. In s31a flashinfer's server ran out of memory at 4096 x 64 (torch.OutOfMemoryError in
# forward_mha's _chunked_prefix_attn_mha, kv_b_proj over a prefix chunk: 7.75 GiB asked, 7.19 free, ours' and
# flashmla's servers holding 51.8 and 46.0 GB after their own prefills): a cost of three servers sharing one GPU,
# not of flashinfer. Two servers leave it ~40 GB more. Predicted: ours / flashinfer 1.05x at 4096 x 1, 1.12x at
# 4096 x 16 and 64 (as s30c and s31a), 1.1-1.4x at the long prompts.
SERVING_ARGS="--interleave --mem-fraction 0.45 --repeats 3 --sglang-backends mla_backend,flashinfer" \
    JIT_CACHE_IN=.jit-sglang STAGE_TIMEOUT=${STAGE_TIMEOUT:-530} timeout -s KILL 590 \
    bash integration_tests/run_gpu.sh .bundle-sglang "$OUT/run" serving-sglang 2>&1 | grep -v "INFO\|kill_process" | tail -8
grep -v "INFO\|kill_process" "$OUT"/run/serving-sglang.log | grep "up in\|decode tok/s\|resuming\|FAILED" | tail -30
ls "$OUT"/run/serving
tar -czf "$OUT/run.tgz" -C "$OUT" run && rm -rf "$OUT/run"
