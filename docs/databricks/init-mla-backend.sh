#!/bin/bash
# Databricks cluster-scoped init script: vLLM and mla_backend in the notebook Python of every node, and the
# decode kernel built (or its ahead-of-time build checked) before the first notebook cell runs.
#
# Cluster environment variables (Advanced options > Spark > Environment variables):
#   MLA_BACKEND_WHEEL=/Volumes/<catalog>/<schema>/<volume>/mla_backend-0.1.0-<tags>.whl   (required)
#   MLA_BACKEND_CACHE=/local_disk0/mla_backend    (where a first-use build is cached; same value for notebooks)
#   VLLM_VERSION=0.26.0                           (optional; 0.26.x is the version mla_backend targets)
set -euo pipefail

PY=/databricks/python/bin/python
WHEEL=${MLA_BACKEND_WHEEL:?set MLA_BACKEND_WHEEL to the mla_backend wheel in a Unity Catalog volume}
export MLA_BACKEND_CACHE=${MLA_BACKEND_CACHE:-/local_disk0/mla_backend}
mkdir -p "$MLA_BACKEND_CACHE"

"$PY" -m pip install --quiet --disable-pip-version-check "vllm==${VLLM_VERSION:-0.26.0}" "$WHEEL"

# A wheel built ahead of time carries the compiled kernel; a pure-Python one is compiled here, which needs nvcc.
if [ -z "${CUDA_HOME:-}" ] && [ -x /usr/local/cuda/bin/nvcc ]; then
    export CUDA_HOME=/usr/local/cuda
fi
if ! "$PY" -m mla_backend.cli doctor --build; then
    # Not fatal: the cluster still starts, and `mla-backend doctor` in a notebook shows the same table.
    echo "mla_backend: doctor found problems (table above); the attention backend will not work on this node" >&2
fi
