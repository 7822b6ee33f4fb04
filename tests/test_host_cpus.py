"""integration_tests/host_cpus.py on CPU: the core list syntax, which cores count as fast, pinning this process
(and the processes it starts) and putting it back, and the line the serving results carry."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

import bench_serving
import host_cpus


@pytest.fixture(autouse=True)
def restore_affinity():
    before = os.sched_getaffinity(0)
    yield
    os.sched_setaffinity(0, before)


def test_core_lists_and_ranges_parse_and_nonsense_is_refused_by_name():
    assert host_cpus.parse_cpu_list("0,3,5-7") == [0, 3, 5, 6, 7]
    assert host_cpus.parse_cpu_list(" 2 , 1") == [1, 2]
    for bad in ("", "a", "3-1", "1-", "-2", "0,,1", "auto2"):
        with pytest.raises(ValueError, match="--cpus"):
            host_cpus.parse_cpu_list(bad)
    assert host_cpus.check_policy("auto") == "auto" and host_cpus.check_policy("0-1") == "0-1"


def test_fast_cores_are_those_within_the_tolerance_of_the_fastest_and_never_fewer_than_the_minimum():
    times = {0: 24.0, 1: 42.0, 2: 25.0, 3: 27.5, 4: 28.0, 5: 60.0}
    assert host_cpus.fast_cpus(times, minimum=1) == [0, 2, 3]
    assert host_cpus.fast_cpus(times) == [0, 2, 3, 4]          # topped up with the next fastest
    lone = {0: 13.0, **{cpu: 20.0 + cpu for cpu in range(1, 16)}}   # seen on the H200 box: one core "fast"
    assert host_cpus.fast_cpus(lone) == [0, 1, 2, 3] and len(host_cpus.fast_cpus(lone)) == host_cpus.MIN_CPUS
    assert host_cpus.fast_cpus({5: 10.0}) == [5]                # fewer cores than the minimum: all of them
    many = {cpu: 10.0 for cpu in range(8)}
    assert host_cpus.fast_cpus(many) == list(range(8))


def test_timing_every_core_leaves_the_affinity_as_it_was():
    before = os.sched_getaffinity(0)
    times = host_cpus.core_times_ms(host_cpus.allowed_cpus(), rounds=1)
    assert sorted(times) == host_cpus.allowed_cpus() and all(ms > 0 for ms in times.values())
    assert os.sched_getaffinity(0) == before


def test_auto_pins_to_a_subset_and_a_started_process_inherits_it():
    record = host_cpus.pin("auto")
    assert record["policy"] == "auto" and set(record["cpus"]) <= set(record["allowed"])
    assert record["cpus"] == host_cpus.fast_cpus(record["core_ms"])
    assert sorted(os.sched_getaffinity(0)) == record["cpus"]
    child = subprocess.run([sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"],
                           capture_output=True, text=True, check=True).stdout
    assert child.strip() == str(record["cpus"])
    assert "pinned to cores" in host_cpus.describe(record)


def test_all_leaves_the_affinity_and_a_list_pins_exactly_it():
    allowed = host_cpus.allowed_cpus()
    assert host_cpus.pin("all")["cpus"] == allowed and sorted(os.sched_getaffinity(0)) == allowed
    assert "not pinned" in host_cpus.describe(host_cpus.pin("all"))
    assert host_cpus.pin(str(allowed[0]))["cpus"] == [allowed[0]] == sorted(os.sched_getaffinity(0))
    with pytest.raises(ValueError, match="not available"):
        host_cpus.pin(str(max(allowed) + 1000))


def test_choose_pins_nothing():
    before = os.sched_getaffinity(0)
    record = host_cpus.choose(str(host_cpus.allowed_cpus()[0]))
    assert record["cpus"] == [host_cpus.allowed_cpus()[0]] and os.sched_getaffinity(0) == before
    assert host_cpus.describe(record).startswith("servers pinned to cores")   # once up, by pin_started
    assert host_cpus.describe(host_cpus.pin("all")).startswith("driver and servers")


SESSION = """
import subprocess, sys, threading, time
threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
print(child.pid, flush=True)
time.sleep(60)
"""


def test_pinning_a_session_moves_every_thread_of_every_process_in_it():
    """As bench_serving pins a server that is up: its threads and the processes it started (workers)."""
    core = host_cpus.allowed_cpus()[-1]
    leader = subprocess.Popen([sys.executable, "-c", SESSION], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        worker = int(leader.stdout.readline())
        threads = host_cpus.session_threads(leader.pid)
        assert leader.pid in threads and worker in threads and len(threads) >= 3   # + the leader's sleeping thread
        assert host_cpus.pin_session(leader.pid, [core]) == len(threads)
        for tid in threads:
            assert os.sched_getaffinity(tid) == {core}
        assert os.getpid() not in threads          # the driver is not in the server's session
    finally:
        os.killpg(leader.pid, signal.SIGKILL)
        leader.wait()


def test_the_auto_line_names_the_slow_cores_times():
    record = {"policy": "auto", "allowed": [0, 1, 2], "cpus": [0, 2], "core_ms": {0: 24.1, 1: 42.7, 2: 25.0}}
    line = host_cpus.describe(record)
    assert "cores 0,2" in line and "2 of 3" in line and "least 4: 24 ms; the other 1 took 43-43 ms)" in line
    servers = host_cpus.describe({**record, "servers_only": True})   # choose's record
    assert servers.startswith("servers pinned to cores 0,2 once up (they start on every core; the driver is not "
                              "pinned): the 2 of 3") and servers.endswith(line.split(": the", 1)[1])
    assert host_cpus.describe(json.loads(json.dumps(record))) == line   # a results file's record: str core keys


def test_the_serving_benchmark_takes_the_policy_into_its_workload_and_refuses_a_bad_one():
    assert bench_serving.parse_args([]).cpus == "auto"
    assert bench_serving.workload(bench_serving.parse_args(["--cpus", "all"]))["cpus"] == "all"
    with pytest.raises(SystemExit):
        bench_serving.parse_args(["--cpus", "fast"])
