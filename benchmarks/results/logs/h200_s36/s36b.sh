#!/usr/bin/env bash
# s36b: v103, the row tiles of a part launched as one thread block cluster (same GPC, so the same L2 side), with
# ncu's DRAM bytes and L2 hit rate of the 64-row kernel on main and CL2. Trees (here, before the call):
#   bash benchmarks/variant_trees.sh .variants/s36/trees main:main-nocheck exp-v103-tile-clusters:CL2-nocheck
#   CL4-nocheck = CL2-nocheck with MLA_TILE_CLUSTER_MAX 4.
# Predicted: if a part's tiles drift apart or sit on different L2 sides and read KV from DRAM twice, CL2 gains
# -2..-4% on the 128-head rows (loads cost main ~5%: s32d's noload twin); h64 (one tile) level. Otherwise level.
# ncu main h128/q1: DRAM bytes a launch 604 MB x 1.0-1.3.
# (First attempt: no cutlass wheel installed, nothing built; this is the second.)
set -uo pipefail
T=.variants/s36/trees
C=b128/s4096/h128/q1,b128/s4096/h128/q2,b132/s8192/h128/q2,b64/s4096/h128/q1,b16/s4096/h128/q1
C=$C,b128/s4096/h64/q1
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s36/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite:$PWD
TESTS=none PROBE_TIMEOUT=120 ROUNDS=2 timeout -s KILL 380 bash benchmarks/probe_variants.sh \
    "$OUT/p" "$C" $T/main-nocheck $T/CL2-nocheck $T/CL4-nocheck > "$OUT/p.log" 2>&1
echo "probe rc=$?"; tail -n 10 "$OUT/p.log"
M=dram__bytes_read.sum,lts__t_sector_hit_rate.pct,gpu__time_duration.sum
for name in main-nocheck CL2-nocheck; do
  for cfg in b128/s4096/h128/q1 b132/s8192/h128/q2; do
    (cd $T/$name && MLA_BACKEND_CACHE=/tmp/ext-$name PYTHONPATH=/tmp/devsite:$PWD timeout -s KILL 70 ncu --clock-control none \
      -k regex:mla_decode_kernel --launch-skip 3 --launch-count 1 --metrics $M \
      python3 benchmarks/probe_decode.py --configs $cfg --reps 5 > "$OUT/ncu_${name}_${cfg//\//_}.log" 2>&1)
    echo "ncu $name $cfg rc=$?"; grep -E "dram__bytes|lts__t_sector_hit|gpu__time" "$OUT/ncu_${name}_${cfg//\//_}.log"
  done
done
