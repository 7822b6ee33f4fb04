#!/usr/bin/env bash
# Local (no GPU): the trees for s29b.sh: main and the combine variants v83a, v83c, v83ac (PERF_NOTES, twenty-eighth
# session).
set -euo pipefail
cd "$(dirname "$0")/../../../.."
mk() { rm -rf ".variants/trees/$2"; mkdir -p ".variants/trees/$2"
       git archive "$1" mla_backend kernels $(git ls-files ':(glob)benchmarks/*.py' ':(glob)benchmarks/*.sh') tests \
           pyproject.toml | tar -x -C ".variants/trees/$2"; }
rm -rf .variants/trees/*
mk main main
mk exp-v83a-combine-all-columns V83A
mk exp-v83c-combine-batch-8 V83C
mk exp-v83ac-combine V83AC
ls .variants/trees
