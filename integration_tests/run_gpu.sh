#!/usr/bin/env bash
# The GPU runs of integration_tests/ on a host without PyPI, as done on our H100 box.
#   bash integration_tests/run_gpu.sh PARTS_DIR OUT_DIR STAGE...
# PARTS_DIR holds the parts of `mla-backend bundle build` (recipe vllm-0.26.0 for the vLLM stages, sglang-0.5.17
# for the sglang-* ones); unpacked once into $SITE (default /tmp/site-<name of PARTS_DIR>).
# vLLM stages: tp1 (the e2e in default mode on the first GPU while the forced-mode e2e and then `mla-backend serve
#   --once` run on the second), tp1-forced, tp1-default (one mode on one GPU), tp2-default, tp2-forced (the e2e at
#   tensor parallel 2), harness (backend vs built-ins below the engine). SGLang stages: sglang-unit (the adapter's CPU
#   tests, with this SGLang), sglang-tp1, sglang-tp2 (the e2e), sglang-step-time (one_batch per backend on the tiny
#   model). Both engines: serving-sglang, serving-vllm (benchmarks/bench_serving.py for that engine; $SERVING_ARGS adds
#   arguments, e.g. --merge with the other engine's results); soak-sglang, soak-vllm (integration_tests/soak.py's soak
#   through that engine with our backend). kernel: tests -m gpu (with whichever engine the bundle holds). Logs and JSON
#   go to OUT_DIR. MLA_E2E_KV_CACHE_DTYPE=fp8 (vLLM stages) or fp8_e4m3 (sglang-tp*) runs the e2e on an fp8 KV cache,
#   every backend alike (its results are kept apart: test ids and file names end in -fp8 / _fp8...).
# Compile caches: a machine's first SGLang server compiles FlashInfer's prefill (~2 min) and torch inductor's and
# Triton's kernels (~1 min). They are kept under $JIT_CACHE (default /tmp/jit-cache), restored first from the
# pieces in $JIT_CACHE_IN (jit-cache.tgz.part-*) if that folder is given and the cache is empty, and packed into
# 15 MiB pieces in $JIT_CACHE_OUT after the stages if that is given. The unpack keeps the archive's fixed mtime on
# every file, so that a restored FlashInfer build stays newer than its sources for ninja (while the unpack stamped
# files with the time of extraction, a restored cache did not shorten a first start).
set -uo pipefail
PARTS=$1 OUT=$2
shift 2
SITE=${SITE:-/tmp/site-$(basename "$PARTS")}
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
# The drivers start each server in a session of its own, so a call cut short by its time limit (timeout -s KILL)
# leaves its servers running on the warm machine, holding the GPU: the next call's servers would find it full.
if pkill -9 -f 'sglang\.launch_server|sglang::|vllm serve|vllm\.entrypoints|VLLM::' 2>/dev/null; then
    echo "stopped the servers an earlier call left running" | tee "$OUT/leftovers.log"
    sleep 10
fi
if [ ! -f "$SITE/activate.sh" ]; then
    python3 -m mla_backend.cli.bundle unpack "$PARTS" --target "$SITE" 2>&1 | tee "$OUT/unpack.log" || exit 1
fi
source "$SITE/activate.sh"
export PYTHONPATH=$PWD:$PYTHONPATH CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
JIT_CACHE=${JIT_CACHE:-/tmp/jit-cache}
export FLASHINFER_WORKSPACE_BASE=$JIT_CACHE/flashinfer TRITON_CACHE_DIR=$JIT_CACHE/triton \
    TORCHINDUCTOR_CACHE_DIR=$JIT_CACHE/inductor
if [ -n "${JIT_CACHE_IN:-}" ] && [ ! -d "$JIT_CACHE" ] && ls "$JIT_CACHE_IN"/jit-cache.tgz.part-* >/dev/null 2>&1; then
    mkdir -p "$JIT_CACHE" && cat "$JIT_CACHE_IN"/jit-cache.tgz.part-* | tar -xz -C "$JIT_CACHE" \
        && echo "compile caches restored from $JIT_CACHE_IN ($(du -sh "$JIT_CACHE" | cut -f1))" | tee -a "$OUT/env.log"
fi
mkdir -p "$JIT_CACHE"
python3 - <<'PY' 2>&1 | tee -a "$OUT/env.log"
import importlib.metadata as md, torch
engines = {}
for name in ("vllm", "sglang", "sglang-kernel", "flashinfer-python"):
    try:
        engines[name] = md.version(name)
    except md.PackageNotFoundError:
        pass
print(engines, "torch", torch.__version__, torch.cuda.get_device_name(), "x", torch.cuda.device_count())
PY
python3 -c 'from mla_backend import _build; _build.load_extension(); print("extension ok")' >>"$OUT/env.log" 2>&1
PYTEST="python3 -m pytest -p no:cacheprovider -q -m gpu -rA"
# The e2e stages that resume keep their results in /tmp/e2e, which lasts while the machine is warm (a stage cut short
# by a call's time limit resumes in the next call with the backends it finished); each call copies their logs and JSON
# under $OUT.
keep_e2e_results() {
    (cd /tmp && find e2e -name '*.log' -o -name '*.json' -o -name '*.jsonl' | xargs -r cp --parents -t "$OUT")
}
rc=0
for stage in "$@"; do
    case $stage in
    tp1)
        (CUDA_VISIBLE_DEVICES=1 MLA_E2E_RESULTS=$OUT/e2e timeout 400 $PYTEST -s integration_tests/test_vllm_e2e.py \
            -k tp1-forced >"$OUT/e2e_tp1-forced.log" 2>&1
         CUDA_VISIBLE_DEVICES=1 timeout 170 python3 -m mla_backend.cli serve --once --port 8300 >"$OUT/serve_once.log" 2>&1
        ) &
        CUDA_VISIBLE_DEVICES=0 MLA_E2E_RESULTS=$OUT/e2e timeout 400 $PYTEST -s integration_tests/test_vllm_e2e.py \
            -k tp1-default >"$OUT/e2e_tp1-default.log" 2>&1 || rc=1
        wait $! || rc=1 ;;
    tp1-forced|tp1-default)
        # One mode on one GPU; resumes as the sglang-tp* stages do.
        MLA_E2E_RESULTS=/tmp/e2e timeout "${STAGE_TIMEOUT:-560}" $PYTEST -s integration_tests/test_vllm_e2e.py \
            -k "$stage" >"$OUT/e2e_$stage.log" 2>&1 || rc=1
        keep_e2e_results ;;
    tp2-*) MLA_E2E_RESULTS=$OUT/e2e timeout 560 $PYTEST -s integration_tests/test_vllm_e2e.py -k "$stage" \
            >"$OUT/e2e_$stage.log" 2>&1 || rc=1 ;;
    harness) timeout 500 $PYTEST integration_tests/test_vllm_vs_builtin.py >"$OUT/harness.log" 2>&1 || rc=1 ;;
    sglang-unit) timeout 300 python3 -m pytest -p no:cacheprovider -q -rA tests/test_sglang_plugin.py \
            tests/test_sglang_backend.py tests/test_sglang_pages.py >"$OUT/sglang_unit.log" 2>&1 || rc=1 ;;
    sglang-tp*)
        MLA_E2E_RESULTS=/tmp/e2e timeout "${STAGE_TIMEOUT:-560}" $PYTEST -s integration_tests/test_sglang_e2e.py \
            -k "${stage#sglang-}" >"$OUT/e2e_$stage.log" 2>&1 || rc=1
        keep_e2e_results ;;
    sglang-step-time) timeout "${STAGE_TIMEOUT:-560}" python3 integration_tests/sglang_step_time.py \
            --backends "${STEP_BACKENDS:-flashmla,mla_backend}" --out "$OUT/sglang_step_time.json" \
            >"$OUT/sglang_step_time.log" 2>&1 || rc=1 ;;
    serving-*)
        # Its workdir is in /tmp too: a run cut short has written each point it measured, and resumes in the next
        # call with the points it has not finished.
        timeout "${STAGE_TIMEOUT:-560}" python3 benchmarks/bench_serving.py --engines "${stage#serving-}" \
            --max-tokens-in-flight 262144 --out-dir "$OUT/serving" ${SERVING_ARGS:-} >"$OUT/$stage.log" 2>&1 || rc=1
        mkdir -p "$OUT/serving"   # a run stopped before its first point wrote nothing there
        for log in /tmp/mla_bench_serving/*/server_*.log; do
            [ -f "$log" ] && { grep -v "Capturing batches" "$log" | head -n 120; echo "[...]"; tail -n 60 "$log"; } \
                >"$OUT/serving/$(basename "$(dirname "$log")")_$(basename "$log")"
        done ;;
    soak-*)
        MLA_E2E_RESULTS=/tmp/soak timeout "${STAGE_TIMEOUT:-540}" $PYTEST -s integration_tests/test_soak.py \
            -k "${stage#soak-}" >"$OUT/$stage.log" 2>&1 || rc=1
        (cd /tmp && find soak -maxdepth 2 \( -name '*.log' -o -name '*.json' \) | xargs -r cp --parents -t "$OUT") ;;
    kernel) timeout 300 $PYTEST tests >"$OUT/kernel.log" 2>&1 || rc=1 ;;
    *) echo "unknown stage $stage" >&2; rc=2 ;;
    esac
done
if [ -n "${JIT_CACHE_OUT:-}" ]; then
    mkdir -p "$JIT_CACHE_OUT" && rm -f "$JIT_CACHE_OUT"/jit-cache.tgz.part-*
    tar -cz -C "$JIT_CACHE" . | split -b 15m -d -a 2 - "$JIT_CACHE_OUT/jit-cache.tgz.part-"
    echo "compile caches packed: $(du -sh "$JIT_CACHE" | cut -f1) -> $(cat "$JIT_CACHE_OUT"/jit-cache.tgz.part-* | wc -c) bytes"
fi
find "$OUT" -name '*.log' -newer "$OUT/env.log" -exec tail -n 3 {} \; 2>/dev/null | tail -n 40
exit $rc
