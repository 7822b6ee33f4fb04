#!/usr/bin/env bash
# s51a: (1) h200_s50/s51a.sh's clock trace of v153's 64-row CTA per role (tree TRACE = HEAD + h200_s50/patches/
# trace-wide-16bit.patch); (2) a %globaltimer timeline of every CTA of the narrow 16-bit kernel and its combine at
# b8/s8192/h16 and the other 16-row small batches (tree NTRACE = HEAD + patches/timeline-narrow.patch, driver
# timeline_narrow.py in that tree), with the bench's per-replay event time of the same one-call graph.
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s49/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,power.draw,temperature.gpu --format=csv > "$OUT/smi.txt" 2>&1
for T in NTRACE TRACE; do
  (cd .variants/s51/trees/$T && MLA_BACKEND_CACHE=/tmp/ext-$T PYTHONPATH=/tmp/devsite:$PWD timeout -s KILL 200 \
     python3 -c "from mla_backend import _build; print(_build.load_extension())" > "$OUT/build-$T.log" 2>&1) &
done
wait
T=.variants/s51/trees/NTRACE
(cd $T && MLA_BACKEND_CACHE=/tmp/ext-NTRACE PYTHONPATH=/tmp/devsite:$PWD timeout -s KILL 200 python3 \
    timeline_narrow.py "$OUT/timeline.json" > "$OUT/timeline.log" 2>&1)
echo "timeline rc=$?"; cat "$OUT/timeline.log" | tail -n 70
T=.variants/s51/trees/TRACE
(cd $T && MLA_BACKEND_CACHE=/tmp/ext-TRACE PYTHONPATH=/tmp/devsite:$PWD timeout -s KILL 240 python3 \
    benchmarks/results/logs/h200_s50/trace_wide.py "$OUT/marks.json" > "$OUT/trace.log" 2>&1)
echo "trace rc=$?"; tail -n 16 "$OUT/trace.log"
cd "$OUT" && tar czf s51a.tgz *.json *.log *.txt && rm -f *.json
