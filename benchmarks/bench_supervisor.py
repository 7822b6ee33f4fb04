"""Run the benchmark in a child process and survive implementations that kill it.

An illegal address inside a kernel poisons the process's CUDA context for good, so the process that hit it
cannot measure anything else. The supervisor (the parent, which never touches CUDA) runs the benchmark in a
child. Around each piece of an implementation's work on a config (its capture and first check, its replays
in each timing round, its checks after timing) the child appends `config <key> peer <name> start` to the
progress log before and `config <key> peer <name> end` after. When the child dies, the pair that started
and never ended is the one that crashed: it is recorded with the tail of the child's stderr, and a new child
resumes the run (configs already written are kept) with that pair skipped and its crash written into the
results. Nothing is relaunched when nothing crashes.

The worker state file tells a child its run id, where the progress log is and which pairs crashed:
    {"run_id": "...", "progress": "<out>/progress.log", "crashed": [{"config": k, "peer": p, "error": e}]}
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import uuid
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path

PROGRESS_NAME = "progress.log"
STATE_NAME = "supervisor-state.json"
WORKER_FLAG = "--worker-state"
EXIT_CONTEXT_LOST = 3  # a child whose CUDA context died under a peer
MAX_RELAUNCHES = 32
STDERR_TAIL_LINES = 30
STDERR_TAIL_CHARS = 2000
_PROGRESS_LINE = re.compile(r"config (\S+) peer (\S+) (start|end)")


class ProgressLog:
    """The child's side: one line before and one after each piece of work of a (config, peer)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def _append(self, config: str, peer: str, event: str) -> None:
        with self.path.open("a") as f:  # closed at once: the line survives the process dying next
            f.write(f"config {config} peer {peer} {event}\n")

    def start(self, config: str, peer: str) -> None:
        self._append(config, peer, "start")

    def end(self, config: str, peer: str) -> None:
        self._append(config, peer, "end")


def unfinished_pair(progress_text: str) -> tuple[str, str] | None:
    """The (config, peer) that started last and never ended, if any."""
    pending = None
    for line in progress_text.splitlines():
        match = _PROGRESS_LINE.fullmatch(line.strip())
        if match is None:
            continue
        pair = (match.group(1), match.group(2))
        if match.group(3) == "start":
            pending = pair
        elif pending == pair:
            pending = None
    return pending


@dataclass
class WorkerState:
    run_id: str
    progress: str
    crashed: list[dict] = field(default_factory=list)

    def crashed_pairs(self) -> dict[str, dict[str, str]]:
        """config key -> peer -> error."""
        pairs: dict[str, dict[str, str]] = {}
        for item in self.crashed:
            pairs.setdefault(item["config"], {})[item["peer"]] = item["error"]
        return pairs

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> WorkerState:
        return cls(**json.loads(Path(path).read_text()))


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    if returncode == EXIT_CONTEXT_LOST:
        return "exit code 3: the CUDA context died"
    return f"exit code {returncode}"


def crash_error(returncode: int, stderr_tail: list[str]) -> str:
    tail = "".join(stderr_tail).strip()[-STDERR_TAIL_CHARS:]
    return f"crashed the benchmark process ({describe_exit(returncode)}); stderr tail:\n{tail}"


def run_child(command: list[str]) -> tuple[int, list[str]]:
    """Run command with stdout shared; its stderr is echoed and its last lines are kept."""
    tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
    with subprocess.Popen(command, stderr=subprocess.PIPE, text=True, errors="replace", bufsize=1) as child:
        for line in child.stderr:
            sys.stderr.write(line)
            tail.append(line)
    return child.returncode, list(tail)


def supervise(child_command: list[str], out_dir: Path, max_relaunches: int = MAX_RELAUNCHES) -> int:
    """Run `child_command + [--worker-state FILE]` until it exits 0 or dies where no peer can be blamed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    state_path = out_dir / STATE_NAME
    state = WorkerState(run_id=new_run_id(), progress=str(out_dir / PROGRESS_NAME))
    Path(state.progress).write_text("")
    for launch in range(max_relaunches + 1):
        state.save(state_path)
        returncode, stderr_tail = run_child([*child_command, WORKER_FLAG, str(state_path)])
        if returncode == 0:
            return 0
        pair = unfinished_pair(Path(state.progress).read_text())
        already = pair is not None and pair[1] in state.crashed_pairs().get(pair[0], {})
        if pair is None or already:
            print(f"supervisor: the benchmark process died ({describe_exit(returncode)}) outside any "
                  "implementation's measurement; not relaunching", file=sys.stderr)
            return returncode or 1
        config, peer = pair
        state.crashed.append({"config": config, "peer": peer, "error": crash_error(returncode, stderr_tail)})
        if launch < max_relaunches:
            print(f"supervisor: {peer} crashed the process on {config} ({describe_exit(returncode)}); "
                  "relaunching for the rest of the run without it", file=sys.stderr, flush=True)
    state.save(state_path)
    print(f"supervisor: gave up after {max_relaunches} relaunches", file=sys.stderr)
    return 1
