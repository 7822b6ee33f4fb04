#!/usr/bin/env bash
# kbkit: exp-fp8-vote-kblocks (vkb) vs main. fp8 tests + memcheck on vkb, then interleaved fp8 probe rounds, then
# bf16 --parts probes of main's weak rows. carry: .dev .variants/kbkit
set -uo pipefail
OUT=${OUT:-/tmp/kbout}; mkdir -p "$OUT"
KIT=$PWD/.variants/kbkit
python3 -m pip install -q --no-deps --target /tmp/devsite .dev/*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/devsite
export PATH=/tmp/devsite/nvidia/cu13/bin:$PATH
for t in main vkb; do rm -rf /tmp/kb/$t; mkdir -p /tmp/kb/$t; tar -xf "$KIT/$t.tar" -C /tmp/kb/$t; done
for t in main vkb; do
  (cd /tmp/kb/$t && MLA_BACKEND_CACHE=/tmp/ext-$t PYTHONPATH=$PWD:/tmp/devsite timeout 600 \
     python3 -c "from mla_backend import _build; _build.load_extension()" >"$OUT/build_$t.log" 2>&1; echo "build $t rc=$?") &
done
wait
which compute-sanitizer
cd /tmp/kb/vkb
MLA_BACKEND_CACHE=/tmp/ext-vkb PYTHONPATH=$PWD:/tmp/devsite timeout -s KILL 300 python3 -m pytest -q -m gpu -p no:cacheprovider \
   -x tests/test_kernel_fp8_gpu.py >"$OUT/tests_vkb.log" 2>&1
echo "vkb fp8 tests rc=$?: $(tail -n 1 "$OUT/tests_vkb.log")"
FP8=b128/s4096/h16/q1,b64/s16384/h16/q1,b32/s1024/h16/q1,b8/s8192/h16/q1,b4/s4096/h16/q1,b1/s32768/h16/q1,b128/s1024/h16/q1,b96/s8192/h16/q1,b128/s4096/h32/q1
for r in 1 2 3; do
  order="main vkb"; [ $((r % 2)) = 0 ] && order="vkb main"
  for t in $order; do
    cd /tmp/kb/$t
    MLA_BACKEND_CACHE=/tmp/ext-$t PYTHONPATH=$PWD:/tmp/devsite timeout -s KILL 120 python3 benchmarks/probe_decode.py --kv fp8 \
      --configs "$FP8" >"$OUT/probe_${t}_$r.log" 2>&1
    echo "$t round $r rc=$?"
  done
done
cd /tmp/kb/main
BF=b64/s2048/h16/q2,b32/s1024/h16/q1,b4/s4096/h16/q1
for parts in 0 66 100 198 264; do
  extra=""; [ $parts != 0 ] && extra="--parts $parts"
  MLA_BACKEND_CACHE=/tmp/ext-main PYTHONPATH=$PWD:/tmp/devsite timeout -s KILL 90 python3 benchmarks/probe_decode.py \
     --configs "$BF" $extra >"$OUT/probe_bf16_parts$parts.log" 2>&1
done
cd "$OUT" && python3 - <<'PY'
import glob, re, collections
rows = collections.defaultdict(lambda: collections.defaultdict(list))
for f in sorted(glob.glob("probe_*_[0-9].log")):
    t = f.split("_")[1]
    for line in open(f):
        m = re.match(r"(b\S+)\s+([\d.]+) us", line)
        if m: rows[m.group(1)][t].append(float(m.group(2)))
for cfg, d in rows.items():
    print(f"{cfg:24s}", "  ".join(f"{t} {sum(v)/len(v):7.1f} ({' '.join(f'{x:.1f}' for x in v)})" for t, v in sorted(d.items())))
for f in sorted(glob.glob("probe_bf16_parts*.log")):
    print(f); print("".join(l[:140] + "\n" for l in open(f) if l.startswith("b")), end="")
PY
