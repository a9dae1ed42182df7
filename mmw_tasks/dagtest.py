"""`airflow dags test` as a child process whose progress the user sees (`mmw demo`): one line per
task as it ends, with its state and the seconds since the start, instead of minutes of silence.

Airflow's own log lines (several hundred per run) are kept, the last ones shown only on failure.
This module starts Airflow as a program and reads its output; it never imports Airflow.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

_START = re.compile(r"\[DAG TEST\] starting task_id=(\S+) map_index=(-?\d+)")
_END = re.compile(r"\[DAG TEST\] end task task_id=(\S+) map_index=(-?\d+)")
_STATE = re.compile(r"\bnew_state=(\w+)")
_RUN_DONE = re.compile(r"DagRun Finished: .*\bstate=(\w+)")
# terminal escape sequences (colours, cursor moves) a logger may add: mmw prints no colour, and
# a coloured key=value would hide the task ids from the patterns above
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]")


@dataclass
class Progress:
    """What the output of one `airflow dags test` said so far."""

    tasks: list[tuple[str, str]] = field(default_factory=list)  # (task label, final state) in end order
    state: str | None = None  # the run's, from "DagRun Finished"
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=60))


def follow(
    lines: Iterable[str], say: Callable[[str], None], clock: Callable[[], float] = time.monotonic, quiet: float = 15.0
) -> Progress:
    """Read `airflow dags test` output line by line; say one line per task that ends, and a line
    after every `quiet` seconds without one (Airflow takes 10 to 60 s to start its in-process API).
    Escape sequences are dropped, from what is said and from the tail kept for a failure."""
    p, last_state, running, t0 = Progress(), None, None, clock()
    last_said = t0
    for raw in lines:
        line = _ANSI.sub("", raw.rstrip("\n"))
        p.tail.append(line)
        now = clock()
        if m := _STATE.search(line):
            last_state = m.group(1)
        elif m := _START.search(line):
            last_state, running = None, _label(m)
        elif m := _END.search(line):
            label, state = _label(m), last_state or "done"
            p.tasks.append((label, state))
            say(f"  {now - t0:5.0f}s  {label:<14s} {state}")
            last_said, running = now, None
        elif m := _RUN_DONE.search(line):
            p.state = m.group(1)
        if now - last_said >= quiet:
            say(f"  {now - t0:5.0f}s  {running + ' running' if running else 'Airflow starting ...'}")
            last_said = now
    return p


def _label(m: re.Match[str]) -> str:
    task, index = m.group(1), int(m.group(2))
    return f"{task}[{index}]" if index >= 0 else task


def run(cmd: list[str], env: dict[str, str], say: Callable[[str], None] = print) -> tuple[int, Progress]:
    """Run `airflow dags test ...` (cmd), saying each task as it ends; (exit code, Progress)."""
    with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1) as proc:
        assert proc.stdout is not None
        progress = follow(proc.stdout, say)
    return proc.returncode, progress
