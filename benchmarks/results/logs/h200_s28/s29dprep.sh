#!/usr/bin/env bash
# Local (no GPU): the trees for s29d.sh: main and v84 (the 64-row kernel's parts take at least MIN_CHUNK_64 blocks)
# at 2, 4 and 8 blocks, beside s29prep.sh's trees.
set -euo pipefail
cd "$(dirname "$0")/../../../.."
bash benchmarks/variant_trees.sh .variants/trees main:main exp-v84-min-chunk-64:V84M2 exp-v84-min-chunk-64:V84M4 \
    exp-v84-min-chunk-64:V84M8
for m in 2 8; do
    sed -i "s/^constexpr int kMinChunk64 = 4;/constexpr int kMinChunk64 = $m;/" .variants/trees/V84M$m/kernels/mla_metadata.cu
    sed -i "s/^MIN_CHUNK_64 = 4 /MIN_CHUNK_64 = $m /" .variants/trees/V84M$m/mla_backend/tile_scheduler.py
done
grep -H "kMinChunk64 = " .variants/trees/*/kernels/mla_metadata.cu
grep -H "^MIN_CHUNK_64" .variants/trees/*/mla_backend/tile_scheduler.py
