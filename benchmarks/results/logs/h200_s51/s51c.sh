#!/usr/bin/env bash
# s51c: where the ~1.1 us between a narrow CTA's last P.V and its end goes (v157 staged the stores and did not move
# it). NT2 = NTRACE + marks after griddepcontrol.launch_dependents, after row_scales, after the output stores;
# NT2T0 = NT2 with launch_dependents from thread 0 only (does one thread trigger the CTA, and is the instruction the 1.1 us?).
set -uo pipefail
python3 -m pip install -q --no-deps --target /tmp/devsite .variants/s49/wheels/nvidia_cutlass*.whl >"$OUT/pip.log" 2>&1
for T in NT2 NT2T0; do
  (cd .variants/s51/trees/$T && MLA_BACKEND_CACHE=/tmp/ext-$T PYTHONPATH=/tmp/devsite:$PWD timeout -s KILL 200 \
     python3 -c "from mla_backend import _build; print(_build.load_extension())" > "$OUT/build-$T.log" 2>&1) &
done
wait
for T in NT2 NT2T0; do
  (cd .variants/s51/trees/$T && MLA_BACKEND_CACHE=/tmp/ext-$T PYTHONPATH=/tmp/devsite:$PWD timeout -s KILL 100 python3 \
      timeline_narrow.py "$OUT/timeline-$T.json" > "$OUT/timeline-$T.log" 2>&1)
  echo "== $T rc=$?"; cat "$OUT/timeline-$T.log"
done
cd "$OUT" && tar czf s51c.tgz timeline-* build-* && rm -f timeline-*.json
