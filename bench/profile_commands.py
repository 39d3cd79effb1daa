#!/usr/bin/env python3
"""What one command costs the daemon: figure 5's workload, with fswatchd's own CPU counted.

usage: profile_commands.py [--commands N] [--runs R] [--concurrency C] [--action-ms MS]
                           [--source DIR ...]

Starts ``fswatchd run`` on figure 5's rule (one rule on a watched inbox, ``events:
[MOVED_TO]``, ``run: [producer, action, DIR, MS, "{path}"]``, the suite's settings), renames
N files into the inbox with the C producer, waits until every file was acted on, and prints
the rate, the daemon's CPU per command (user and system microseconds, from
/proc/PID/stat, read after READY=1 and after the last action), its children's (the
actions it has reaped: cutime + cstime), the share of the machine's CPU time that was
busy (/proc/stat), the rate at which this CPU per command would keep every core busy
(``full_cpu_rate``: cores / (daemon + children per command); 0 for a run too short to
see a clock tick), and the most actions seen running at once. With several ``--source``
checkouts (fswatchd's package directory is taken from each, imported ahead of any
installed copy), their runs alternate A B A B, and medians per source end the output: an
A/B of two versions on one noisy machine.

To see where the daemon's time goes, attach a profiler to the pid printed at each start
(``py-spy record --idle -p PID``, ``strace -c -p PID``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from benchlib.common import build_producer  # noqa: E402
from benchlib.daemon import start_fswatchd, wait_file_lines  # noqa: E402
from benchlib.fig_daemon import commands_rule  # noqa: E402

_TICK = os.sysconf("SC_CLK_TCK")
#: A source of runs: a checkout's path (or None, for a floor without fswatchd).
S = TypeVar("S")
#: Runs fswatchd's CLI with a given checkout first on sys.path (argv[1]: the checkout).
_LAUNCH = (
    "import runpy, sys; sys.path.insert(0, sys.argv.pop(1)); "
    "runpy.run_module('fswatchd', run_name='__main__')"
)


def cpu_times(pid: int) -> tuple[float, float, float]:
    """(user, system, reaped children's user + system) CPU seconds of ``pid`` so far
    (proc(5): stat fields 14, 15, 16 and 17)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    user, system, c_user, c_system = (int(v) / _TICK for v in fields[11:15])
    return user, system, c_user + c_system


def machine_times() -> tuple[int, int]:
    """(all, idle + iowait) CPU time of the whole machine so far, in ticks (proc(5):
    /proc/stat, line ``cpu``). All is user to softirq: steal is time this VM did not
    have, and guest time is already in user."""
    with open("/proc/stat") as f:
        ticks = [int(v) for v in f.readline().split()[1:8]]
    return sum(ticks), ticks[3] + ticks[4]


def one_run(source: Path, producer: Path, args: argparse.Namespace) -> dict[str, float]:
    """One measured run; rate /s, user and system us per command, max running."""
    n = args.commands
    with tempfile.TemporaryDirectory(prefix="commands-", dir="/dev/shm") as tmp:
        work = Path(tmp)
        inbox, staging, count = work / "inbox", work / "staging", work / "count"
        for d in (inbox, staging, count):
            d.mkdir()
        subprocess.run([producer, "flat", staging, str(n), "m_"], check=True)
        rule = commands_rule(producer, inbox, count, args.action_ms, args.concurrency)
        runner = start_fswatchd(work, rule, 30, [sys.executable, "-c", _LAUNCH, str(source)])
        try:
            print(f"  daemon pid {runner.child.pid}", file=sys.stderr)
            user0, sys0, children0 = cpu_times(runner.child.pid)
            all0, idle0 = machine_times()
            t0 = time.monotonic()
            subprocess.run([producer, "rename", staging, inbox, str(n), "m_"], check=True)
            done = wait_file_lines(count / "done", n, time.monotonic() + 120, 0.01)
            elapsed = time.monotonic() - t0
            user1, sys1, children1 = cpu_times(runner.child.pid)
            all1, idle1 = machine_times()
        finally:
            runner.finish()
        if len(done) < n:
            raise RuntimeError(f"{len(done)} of {n} actions ran within 120 s")
        # CPU comes in clock ticks (10 ms): a short run may see none.
        per_command = (user1 - user0 + sys1 - sys0 + children1 - children0) / n
        ticks = all1 - all0
        return {
            "rate": n / elapsed,
            "user_us": 1e6 * (user1 - user0) / n,
            "sys_us": 1e6 * (sys1 - sys0) / n,
            "children_us": 1e6 * (children1 - children0) / n,
            "busy_pct": 100 * (1 - (idle1 - idle0) / ticks) if ticks else 0.0,
            "full_cpu_rate": len(os.sched_getaffinity(0)) / per_command if per_command else 0.0,
            "max_running": int((count / "max").read_text()),
        }


def alternate(
    sources: Sequence[S],
    runs: int,
    measure: Callable[[S], dict[str, float]],
    label: Callable[[S], str] = str,
) -> None:
    """``runs`` rounds of ``measure(source)`` for each source in turn (A B A B ...), each
    run printed as it ends (``run N LABEL: {json}``), then the medians per source
    (``median LABEL: {json}``); values are rounded to integers."""
    results: dict[S, list[dict[str, float]]] = {s: [] for s in sources}
    for run in range(runs):
        for source in sources:
            r = measure(source)
            results[source].append(r)
            line = json.dumps({k: round(v) for k, v in r.items()})
            print(f"run {run} {label(source)}: {line}", flush=True)
    for source, results_of in results.items():
        med = {k: round(statistics.median(r[k] for r in results_of)) for k in results_of[0]}
        print(f"median {label(source)}: {json.dumps(med)}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--commands", type=int, default=3000)
    p.add_argument("--runs", type=int, default=6)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--action-ms", type=int, default=1)
    p.add_argument("--source", type=Path, action="append",
                   help="a checkout whose fswatchd/ is run (default: this one)")  # fmt: skip
    args = p.parse_args()
    sources = [s.resolve() for s in args.source or [BENCH.parent]]
    producer = build_producer(BENCH / "build")
    alternate(sources, args.runs, lambda source: one_run(source, producer, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
