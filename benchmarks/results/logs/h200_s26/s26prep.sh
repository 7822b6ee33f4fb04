#!/usr/bin/env bash
# Local (no GPU): the trees for .variants/s26a.sh, from the branches of the twenty-fifth session.
set -euo pipefail
cd "$(dirname "$0")/.."
mk() { rm -rf ".variants/trees/$2"; mkdir -p ".variants/trees/$2"
       git archive "$1" mla_backend kernels $(git ls-files ':(glob)benchmarks/*.py' ':(glob)benchmarks/*.sh') tests \
           pyproject.toml | tar -x -C ".variants/trees/$2"; }
noload() {   # the TMA producer arrives without loading (benchmarks/wide_diagnostics.py's noload edit)
  python3 - "$1" <<'PY'
import sys
from pathlib import Path
f = Path(sys.argv[1]) / "kernels/mla_decode.cuh"
old = "  mbar_arrive_expect_tx(full, group_sub_tiles(group) * kSubTileBytes);\n"
t = f.read_text(); assert t.count(old) == 1; f.write_text(t.replace(old, "  mbar_arrive_expect_tx(full, 0);\n  return;\n"))
PY
}
rm -rf .variants/trees/*
mk main main-nocheck
mk exp-v80c-seesaw-staggered V80C-nocheck
mk exp-v80d-grouped-qk V80D
mk exp-v80f-l2-prefetch V80F-nocheck
mk main main-noload-nocheck && noload .variants/trees/main-noload-nocheck
mk exp-v80c-seesaw-staggered V80C-noload-nocheck && noload .variants/trees/V80C-noload-nocheck
mk exp-v80c-trace V80C-trace-nocheck
mk exp-v80c-trace MAIN-trace-nocheck
sed -i 's/constexpr bool kSeesaw = true;/constexpr bool kSeesaw = false;/' .variants/trees/MAIN-trace-nocheck/kernels/mla_decode.cuh
grep -c "kSeesaw = false" .variants/trees/MAIN-trace-nocheck/kernels/mla_decode.cuh
ls .variants/trees
