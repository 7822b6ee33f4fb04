#!/usr/bin/env bash
# Source trees for benchmarks/probe_variants.sh, one per kernel experiment: each REV's kernels, package, tests and
# benchmark scripts (git archive) in DIR/NAME, replacing what DIR held.
#   bash benchmarks/variant_trees.sh DIR REV:NAME...      e.g. .variants/trees main:main exp-v83a-combine:V83A
set -euo pipefail
dir=$1
shift
cd "$(dirname "$0")/.."
rm -rf "${dir:?}"/*
for spec in "$@"; do
    rev=${spec%%:*} name=${spec#*:}
    mkdir -p "$dir/$name"
    git archive "$rev" mla_backend kernels $(git ls-files ':(glob)benchmarks/*.py' ':(glob)benchmarks/*.sh') tests \
        pyproject.toml | tar -x -C "$dir/$name"
done
ls "$dir"
