#!/usr/bin/env bash
# s31b (prepared in the thirtieth session, not yet run): vLLM 0.26 serving at 32 layers, ours (CUSTOM) and TRITON_MLA
# interleaved, the six cells, 2 rounds: the one vLLM built-in never served at 32 layers (issue 10). Calls 1 and 2
# (after `s31b_stage.sh 0` and `... 1` here, carry .bvs): `mkdir -p /tmp/bvs && cp .bvs/* /tmp/bvs/`. Call 3 (after
# `s31b_stage.sh 2`, carry .bvs): this script. A cut run resumes in a next call on the same warm machine (carry
# nothing: the parts are in /tmp). Predicted from the kernels (vLLM's decode_attention_fwd 4-10x ours on these
# shapes) and the 12-layer run (TRITON_MLA 0.07-0.81x ours): ours 1.5-10x TRITON_MLA in every cell.
SERVING_ARGS="--interleave --vllm-backends CUSTOM,TRITON_MLA" STAGE_TIMEOUT=${STAGE_TIMEOUT:-540} timeout -s KILL 590 \
    bash benchmarks/results/logs/h200_s27/vllm.sh serving-vllm > "$OUT/vllm.log" 2>&1
echo "rc=$?"; tail -n 5 "$OUT/vllm.log"
tar -xzf "$OUT/run.tgz" -O run/serving-vllm.log 2>/dev/null | grep -v "INFO" | grep "up in\|decode tok/s\|resuming\|FAILED" | tail -20
