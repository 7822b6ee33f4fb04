#!/usr/bin/env bash
# Source trees for benchmarks/probe_variants.sh, one per kernel experiment: each REV's kernels, package, tests and
# benchmark scripts (git archive) in DIR/NAME, replacing that folder.
#   bash benchmarks/variant_trees.sh DIR REV:NAME...      e.g. .variants/trees main:main exp-v83a-combine:V83A
set -euo pipefail
dir=$1
shift
cd "$(dirname "$0")/.."
for spec in "$@"; do
    rev=${spec%%:*} name=${spec#*:}
    rm -rf "${dir:?}/$name" && mkdir -p "$dir/$name"
    scripts=$(git ls-tree --name-only "$rev" benchmarks/ | grep -E '\.(py|sh)$')
    git archive "$rev" mla_backend kernels $scripts tests pyproject.toml | tar -x -C "$dir/$name"
done
ls "$dir"
