#!/usr/bin/env bash
# Local (no GPU): the trees for s29b.sh: main and the combine variants v83a, v83c, v83ac (PERF_NOTES, twenty-eighth
# session).
set -euo pipefail
cd "$(dirname "$0")/../../../.."
bash benchmarks/variant_trees.sh .variants/trees main:main exp-v83a-combine-all-columns:V83A \
    exp-v83c-combine-batch-8:V83C exp-v83ac-combine:V83AC
