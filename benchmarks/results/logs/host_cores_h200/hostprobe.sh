#!/bin/bash
# Host speed per process and per core (is the c = 1 serving noise the CPU?). ~40 s.
R=/tmp/hp; mkdir -p $R
{ nproc; lscpu | head -30; taskset -p $$; nvidia-smi topo -m; cat /sys/fs/cgroup/cpu.max 2>/dev/null; cat /sys/fs/cgroup/cpuset.cpus.effective 2>/dev/null;
  for d in /sys/bus/pci/devices/*; do [ -f $d/class ] && grep -q 0x030200 $d/class && echo "$d local_cpulist $(cat $d/local_cpulist) numa $(cat $d/numa_node)"; done; } > $R/topo.txt 2>&1
cat > /tmp/loop.py <<'P'
import time, sys
def work():
    d = {}
    for i in range(200000):
        d[i % 1000] = d.get(i % 1000, 0) + i
    return d
best = 1e9
for _ in range(15):
    t = time.perf_counter(); work(); best = min(best, time.perf_counter() - t)
print(f"{sys.argv[1]} {best*1e3:.2f} ms")
P
echo "unpinned processes, one after another:" >> $R/loop.txt
for i in 1 2 3 4 5 6; do python3 /tmp/loop.py run$i >> $R/loop.txt; done
echo "pinned to each allowed core:" >> $R/loop.txt
for c in $(python3 -c "import os; print(' '.join(map(str, sorted(os.sched_getaffinity(0)))))"); do taskset -c $c python3 /tmp/loop.py core$c >> $R/loop.txt; done
echo "16 at once, unpinned:" >> $R/loop.txt
for i in $(seq 1 16); do python3 /tmp/loop.py par$i >> $R/par.txt & done; wait; sort -k2 -n $R/par.txt >> $R/loop.txt
cat $R/topo.txt | tail -25; cat $R/loop.txt; tar -czf $OUT/hp.tgz -C $R .
