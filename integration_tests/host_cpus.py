"""The CPU cores a serving measurement runs on: by default the fast ones of this machine.

A decode step at one request is host-bound (the engine's Python scheduler, input preparation and sampling take
longer than the GPU's work), so the core an engine's hot thread lands on sets the step time. On a shared or
virtualised host the cores are not alike: some share a physical core with a busy neighbour or run throttled. The
policy `auto` times a single-threaded Python loop on every core this process may use and picks the cores within
TOLERANCE of the fastest (at least MIN_CPUS of them, the fastest), so every backend's server of one run sees the
same cores. `all` leaves the affinity as it is; a list such as `0,3,5-7` picks exactly those cores.

    record = host_cpus.choose("auto")   # {"policy": "auto", "cpus": [...], "core_ms": {...}, "allowed": [...]}
    host_cpus.pin_started(record, server.proc.pid)   # once the server is up: its whole session onto the cores

The servers (bench_serving, the e2e drivers) start on every core and are pinned once up: an engine's first start on
a machine compiles kernels with as many jobs as it has cores (SGLang 0.5.17's first server on the H200 box took
238 s pinned to 7 cores, 417 s pinned to 5), and the start is not what is measured. `pin` pins this process instead,
and so every process it starts later (the in-process vLLM probes).
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

POLICIES = ("auto", "all")
TOLERANCE = 0.15          # a core counts as fast within 15% of the fastest core's loop time
# ... but never fewer than this many: an engine server is several busy processes (vLLM: API server, engine core;
# the driver besides), and on a noisy host one core alone has come out "fast" (H200 box, 2026-11-30).
MIN_CPUS = 4
LOOP_ROUNDS = 5           # best of this many timings per core


def allowed_cpus() -> list[int]:
    return sorted(os.sched_getaffinity(0))


def parse_cpu_list(text: str) -> list[int]:
    """`0,3,5-7` -> [0, 3, 5, 6, 7]; ValueError naming the part that is not a core or a range."""
    cpus: set[int] = set()
    for part in text.split(","):
        first, dash, last = part.strip().partition("-")
        last = last if dash else first
        if not (first.isdigit() and last.isdigit() and int(first) <= int(last)):
            raise ValueError(f"--cpus: expected 'auto', 'all' or a core list such as 0,3,5-7; got {part.strip()!r} "
                             f"in {text!r}")
        cpus.update(range(int(first), int(last) + 1))
    return sorted(cpus)


def check_policy(text: str) -> str:
    """argparse `type=` of every --cpus: the policy as given, when it is one; else an error argparse prints as is."""
    if text not in POLICIES:
        try:
            parse_cpu_list(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error).removeprefix("--cpus: ")) from None
    return text


def _loop() -> None:
    table: dict[int, int] = {}
    for i in range(100_000):
        table[i % 1000] = table.get(i % 1000, 0) + i


def core_times_ms(cpus: list[int], rounds: int = LOOP_ROUNDS) -> dict[int, float]:
    """Per core, the best time of a single-threaded Python loop run on it (this thread moved there and back)."""
    before = os.sched_getaffinity(0)
    times = {}
    try:
        for cpu in cpus:
            os.sched_setaffinity(0, {cpu})
            best = float("inf")
            for _ in range(rounds):
                t0 = time.perf_counter()
                _loop()
                best = min(best, time.perf_counter() - t0)
            times[cpu] = round(best * 1e3, 2)
    finally:
        os.sched_setaffinity(0, before)
    return times


def fast_cpus(times: dict[int, float], tolerance: float = TOLERANCE, minimum: int = MIN_CPUS) -> list[int]:
    """The cores within `tolerance` of the fastest, topped up with the next fastest to `minimum` where there are."""
    ranked = sorted(times, key=lambda cpu: (times[cpu], cpu))
    fastest = times[ranked[0]]
    within = [cpu for cpu in ranked if times[cpu] <= fastest * (1 + tolerance)]
    return sorted(ranked[:max(len(within), minimum)])


def choose(policy: str) -> dict:
    """The cores `policy` picks, pinning nothing: {"policy", "allowed", "cpus"[, "core_ms"], "servers_only"}; the
    servers go onto them once up (pin_started), the driver stays where it is."""
    allowed = allowed_cpus()
    record: dict = {"policy": policy, "allowed": allowed, "servers_only": True}
    if policy == "all":
        return {**record, "cpus": allowed}
    if policy == "auto":
        record["core_ms"] = core_times_ms(allowed)
        return {**record, "cpus": fast_cpus(record["core_ms"])}
    cpus = parse_cpu_list(policy)
    outside = sorted(set(cpus) - set(allowed))
    if outside:
        raise ValueError(f"--cpus: cores {outside} are not available to this process (allowed: {allowed})")
    return {**record, "cpus": cpus}


def pin(policy: str) -> dict:
    """Pins this process (and so every process it starts later) as `policy` says; returns what was done."""
    record = {**choose(policy), "servers_only": False}
    os.sched_setaffinity(0, record["cpus"])
    return record


def session_threads(session: int) -> list[int]:
    """The thread ids of every process in session `session` (a process started with start_new_session=True heads
    its own: the server, its workers and what they started), read from /proc."""
    tids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()   # after "pid (comm)": state ppid pgrp session
            if int(fields[3]) == session:
                tids += [int(task.name) for task in (stat.parent / "task").iterdir()]
        except (OSError, IndexError, ValueError):   # a process that exited meanwhile
            continue
    return tids


def pin_session(session: int, cpus: list[int]) -> int:
    """Moves every thread of session `session` onto `cpus` (threads and processes started later inherit it from
    their parent); returns how many were moved."""
    moved = 0
    for tid in session_threads(session):
        try:
            os.sched_setaffinity(tid, cpus)
            moved += 1
        except (ProcessLookupError, PermissionError):   # exited meanwhile
            continue
    return moved


def pin_started(record: dict, session: int) -> None:
    """A server that is up onto the record's cores (choose's), with every thread and process of its session; nothing
    for the policy `all`."""
    if record["policy"] != "all":
        pin_session(session, record["cpus"])


def describe(record: dict) -> str:
    """One line for a results file: which cores, chosen how."""
    cpus = ",".join(map(str, record["cpus"]))
    if record["policy"] == "all":
        return f"driver and servers on every core this process may use ({cpus}), not pinned"
    # Records written before "servers_only" existed come from pin().
    pinned = (f"servers pinned to cores {cpus} once up (they start on every core; the driver is not pinned)"
              if record.get("servers_only") else f"driver and servers pinned to cores {cpus}")
    if record["policy"] == "auto":
        times = record["core_ms"]
        slow = [ms for cpu, ms in times.items() if int(cpu) not in record["cpus"]]   # str keys once read from JSON
        slower = f"; the other {len(slow)} took {min(slow):.0f}-{max(slow):.0f} ms" if slow else ""
        return (f"{pinned}: the {len(record['cpus'])} of {len(times)} whose "
                f"single-thread Python loop ran fastest (within {TOLERANCE:.0%} of the fastest, at least "
                f"{MIN_CPUS}: {min(times.values()):.0f} ms{slower})")
    return f"{pinned} (--cpus)"
