#!/usr/bin/env bash
# vLLM stages: the bundle's parts were carried as .bvs/p0..p2 in earlier calls and copied to /tmp/bvs.
set -uo pipefail
mkdir -p /tmp/bvs && cp .bvs/* /tmp/bvs/ 2>/dev/null
if [ ! -f /tmp/site-vllm-parts/activate.sh ]; then
  mkdir -p /tmp/vllm-parts
  rm -f /tmp/vllm-parts/*; cat /tmp/bvs/p0 /tmp/bvs/p1 /tmp/bvs/p2 | split -b 62914560 -d -a 2 - /tmp/vllm-parts/bundle.tar.xz.part-
  cp /tmp/bvs/SHA256SUMS /tmp/bvs/mla_backend_bundle.py /tmp/vllm-parts/
fi
bash integration_tests/run_gpu.sh /tmp/vllm-parts "$OUT/run" "$@"
rc=$?
tar -czf "$OUT/run.tgz" -C "$OUT" run && rm -rf "$OUT/run"
exit $rc
