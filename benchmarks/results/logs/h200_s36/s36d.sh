#!/usr/bin/env bash
# s36d: vLLM 0.26 serving on an fp8 KV cache at 32 layers (the 16-head checkpoint: TP 8's view of DeepSeek-V3),
# ours (CUSTOM), FLASHMLA and TRITON_MLA interleaved, the six cells, 2 rounds: issue 12's serving target (decode
# tokens/s >= every built-in fp8 option). The bundle travels as in the thirty-first session: calls 1 and 2 (after
# `benchmarks/results/logs/h200_s30/s31b_stage.sh 0` and `... 1` here, carry .bvs) run
# `mkdir -p /tmp/bvs && cp .bvs/* /tmp/bvs/`; call 3 (after `s31b_stage.sh 2`, carry .bvs) runs this script with the
# commit. A cut run resumes in a next call on the same warm machine (carry nothing).
# Predicted: at 32 layers a step's attention is 32 x 15-45 µs, so ours >= FLASHMLA fp8 in every cell (its kernel is
# 1.2-1.4x slower at 16 rows) by 1-10%, and >= TRITON_MLA from 16 requests on; the one-request cells within the
# host's noise (+-5%).
SERVING_ARGS="--interleave --kv-cache-dtype fp8 --vllm-backends CUSTOM,FLASHMLA,TRITON_MLA --commit $1" \
    STAGE_TIMEOUT=${STAGE_TIMEOUT:-540} timeout -s KILL 585 \
    bash benchmarks/results/logs/h200_s27/vllm.sh serving-vllm > "$OUT/vllm.log" 2>&1
echo "rc=$?"; tail -n 5 "$OUT/vllm.log"
tar -xzf "$OUT/run.tgz" -O run/serving-vllm.log 2>/dev/null | grep -v "INFO" | grep "up in\|decode tok/s\|resuming\|FAILED" | tail -30
