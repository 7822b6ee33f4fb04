#!/usr/bin/env bash
# s53f: DRAM bytes and L2 hit rate of one 16-bit 64-row kernel launch at b128/s4096/h128/q1 for main, main on
# L2-resident pages (--fold-pages 128), and v163a/b (bulk L2 prefetch two blocks ahead: one row tile / every tile).
# Carry .variants/s53 (the trees) and .variants/s49 (the cutlass wheel).
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s49/wheels/nvidia_cutlass*.whl >/dev/null 2>&1
export PYTHONPATH=/tmp/devsite
T=$PWD/.variants/s53/trees
M=gpu__time_duration.sum,sm__cycles_elapsed.avg,dram__bytes_read.sum,lts__t_sector_hit_rate.pct,lts__t_sectors_srcunit_tex_op_read.sum,lts__t_sectors_srcunit_tex_op_read_lookup_miss.sum
for t in MAIN-nocheck V163A V163B; do   # builds in parallel before any GPU work
  (cd $T/$t && MLA_BACKEND_CACHE=/tmp/ext-$t PYTHONPATH=$PWD:/tmp/devsite timeout 600 \
      python3 -c "from mla_backend import _build; _build.load_extension()" > /dev/null 2>&1; echo "build $t rc=$?") &
done
wait
run() {   # name, tree, extra probe args
  (cd "$2" && MLA_BACKEND_CACHE=/tmp/ext-$(basename "$2") PYTHONPATH=$PWD:/tmp/devsite timeout -s KILL 150 \
      ncu --metrics $M --clock-control none -k "regex:mla_decode_kernel" --launch-skip 3 --launch-count 1 \
      python3 benchmarks/probe_decode.py --configs b128/s4096/h128/q1 --reps 5 $3 > "$OUT/ncu_$1.log" 2>&1)
  echo "== $1 rc=$?"; grep -E "gpu__time|cycles_elapsed|dram__bytes|hit_rate|srcunit_tex" "$OUT/ncu_$1.log"
}
run main $T/MAIN-nocheck ""
run main_fold $T/MAIN-nocheck "--fold-pages 128"
run v163a $T/V163A ""
run v163b $T/V163B ""
