#!/usr/bin/env bash
# Local (no GPU): the trees for .variants/s27b.sh: main (v82) and the two fp8 producer orders v82b, v82c.
set -euo pipefail
cd "$(dirname "$0")/.."
mk() { rm -rf ".variants/trees/$2"; mkdir -p ".variants/trees/$2"
       git archive "$1" mla_backend kernels $(git ls-files ':(glob)benchmarks/*.py' ':(glob)benchmarks/*.sh') tests \
           pyproject.toml | tar -x -C ".variants/trees/$2"; }
rm -rf .variants/trees/*
mk main main-nocheck
mk exp-v82b-fp8-copy-first V82B
mk exp-v82c-fp8-widen-mid-block V82C
ls .variants/trees
