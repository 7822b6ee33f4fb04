#!/usr/bin/env bash
# s46c: vLLM 0.26 e2e in forced mode (teacher forcing) at TP 1 on an fp8 KV cache with the current kernels: CUSTOM,
# FLASHMLA and TRITON_MLA on `--kv-cache-dtype fp8`, the tiny checkpoint. The last vLLM fp8 e2e ran the kernels of
# d16d2b2 (forced) and 744eefa (default). The bundle's three pieces travel as in the thirty-sixth session (calls 1-2:
# `benchmarks/results/logs/h200_s30/s31b_stage.sh 0` / `1` here, carry .bvs, run `mkdir -p /tmp/bvs && cp .bvs/*
# /tmp/bvs/`; call 3: `s31b_stage.sh 2`, carry .bvs, this script with the commit). A stage cut short resumes in a
# next call on the same warm machine (carry nothing). Predicted: 5 passed; ours vs FLASHMLA-fp8 max |dlogprob|
# ~0.1 (d16d2b2: 0.106, TRITON_MLA-fp8 vs FLASHMLA-fp8 0.100).
MLA_E2E_KV_CACHE_DTYPE=fp8 STAGE_TIMEOUT=${STAGE_TIMEOUT:-520} timeout -s KILL 570 \
    bash benchmarks/results/logs/h200_s27/vllm.sh tp1-forced > "$OUT/vllm.log" 2>&1
echo "rc=$?"; tail -n 5 "$OUT/vllm.log"
tar -xzf "$OUT/run.tgz" -O run/e2e_tp1-forced.log 2>/dev/null | grep -v "INFO" | grep "up in\|passed\|failed\|FAILED" | tail -12
echo "commit $1"
