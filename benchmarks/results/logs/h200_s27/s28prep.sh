#!/usr/bin/env bash
# Local (no GPU): the trees for s28d.sh: main (v82) and the fp8 producer variants v82b, v82c, v82d, v82cd.
set -euo pipefail
cd "$(dirname "$0")/../../../.."
mk() { rm -rf ".variants/trees/$2"; mkdir -p ".variants/trees/$2"
       git archive "$1" mla_backend kernels $(git ls-files ':(glob)benchmarks/*.py' ':(glob)benchmarks/*.sh') tests \
           pyproject.toml | tar -x -C ".variants/trees/$2"; }
rm -rf .variants/trees/*
mk main main-nocheck
mk exp-v82b-fp8-copy-first V82B
mk exp-v82c-fp8-widen-mid-block V82C
mk exp-v82d-fp8-exact-widening V82D
mk exp-v82cd-fp8-widen-mid-block-exact V82CD
ls .variants/trees
