#!/usr/bin/env python3
"""What one webhook POST costs the daemon: figure 6's workload, with fswatchd's own CPU counted.

usage: profile_webhooks.py [--webhooks N] [--runs R] [--concurrency C] [--pause S]
                           [--source DIR ...] [--floor]

Starts the aiohttp receiver (``peers/receiver.py``) and ``fswatchd run`` on figure 6's rule
(one rule on a watched directory, ``events: [CLOSE_WRITE]``, ``webhook: {url, retries:
0}``, the suite's settings), writes N files there with the C producer, waits until the
receiver has N POSTs, and prints:

* the rate: N over first file to the receiver's last stamp, as figure 6 counts it;
* the daemon's CPU per POST, user and system microseconds, from /proc/PID/stat read after
  READY=1 and after the last POST arrived; and the receiver's;
* ``per_receiver``: the daemon's CPU as a percentage of the receiver's. The receiver does
  the same work per POST in every run, and the machine's own drift from run to run moves
  both, so this ratio is the steadier figure for an A/B;
* the connections used, and the inotify queue overflows the daemon reported (each is a
  rescan, whose cost is in the CPU figures).

With several ``--source`` checkouts (fswatchd's package directory is taken from each,
imported ahead of any installed copy), their runs alternate A B A B, and medians per
source end the output: an A/B of two versions on one noisy machine. ``--floor`` adds
figure 6's floor to the alternation (``peers/aiohttp_floor.py``, a bare aiohttp session
posting N bodies, its CPU counted the same way): what a POST costs without fswatchd.

N is kept under the rule's hard cap (10 x queue_limit, 10,000 pending jobs) and the
kernel's queue (fs.inotify.max_queued_events, 16,384 here; a file written is CREATE,
MODIFY, CLOSE_WRITE): a daemon slowed by a profiler overflows from about 8,000 files, and
a run with files lost to either fails.

To see where the daemon's time goes, attach a profiler to the pid printed at each start
(``py-spy record -p PID``); ``--pause S`` waits S seconds after printing it before the
first file is written, so the profile can start before the POSTs do.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from benchlib.common import build_producer  # noqa: E402
from benchlib.daemon import start_fswatchd, start_stderr_ready  # noqa: E402
from benchlib.fig_daemon import webhooks_rule  # noqa: E402
from benchlib.proc import Child  # noqa: E402
from profile_commands import _LAUNCH, alternate, cpu_times  # noqa: E402


def one_run(source: Path | None, producer: Path, args: argparse.Namespace) -> dict[str, float]:
    """One run of ``source``'s daemon (None: the aiohttp floor): rate /s, the poster's user
    and system us per POST, the receiver's us per POST, connections, overflows."""
    n = args.webhooks
    with tempfile.TemporaryDirectory(prefix="webhooks-", dir="/dev/shm") as tmp:
        work = Path(tmp)
        log = work / "received"
        receiver = start_stderr_ready([sys.executable, str(BENCH / "peers/receiver.py")], 30,
                                      tee=log)  # fmt: skip
        try:
            port = int(receiver.child.err.tail().split(b"READY ")[1].split()[0])
            url = f"http://127.0.0.1:{port}/hook"
            post = _post_daemon if source is not None else _post_floor
            r = post(source, work, url, receiver.child, producer, args)
        finally:
            receiver.finish()
        received = [line.split(maxsplit=2) for line in log.read_bytes().splitlines()]
    if len({path for _, _, path in received}) != n:
        raise RuntimeError(f"{len(received)} POSTs within 120 s, not one for each of {n} paths")
    last = max(int(stamp) for stamp, _, _ in received)
    r["rate"] = n / ((last - r.pop("t0")) / 1e9)
    r["connections"] = len({port for _, port, _ in received})
    # 0 when a short run saw no clock tick of the receiver's (the smoke test's 40 POSTs).
    own = r["user_us"] + r["sys_us"]
    r["per_receiver"] = 100 * own / r["receiver_us"] if r["receiver_us"] else 0.0
    return {k: r[k] for k in _COLUMNS}


_COLUMNS = ("rate", "user_us", "sys_us", "receiver_us", "per_receiver", "connections", "overflows")


def _own_cpu(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of ``pid`` itself so far, its reaped children left out."""
    user, system, _children = cpu_times(pid)
    return user, system


def _measured(poster: Child, receiver: Child, n: int, start: Callable[[], int]) -> dict[str, float]:
    """CPU of ``poster`` and ``receiver`` around ``start()`` (its t0, mono ns) and the N POSTs."""
    user0, sys0 = _own_cpu(poster.pid)
    recv0 = sum(_own_cpu(receiver.pid))
    t0 = start()
    receiver.out.wait_lines(n, time.monotonic() + 120)
    user1, sys1 = _own_cpu(poster.pid)
    recv1 = sum(_own_cpu(receiver.pid))
    return {
        "t0": t0,
        "user_us": 1e6 * (user1 - user0) / n,
        "sys_us": 1e6 * (sys1 - sys0) / n,
        "receiver_us": 1e6 * (recv1 - recv0) / n,
    }


def _post_daemon(
    source: Path | None, work: Path, url: str, receiver: Child, producer: Path,
    args: argparse.Namespace,
) -> dict[str, float]:  # fmt: skip
    """fswatchd run from ``source`` on figure 6's rule; the producer writes the N files."""
    assert source is not None
    root = work / "root"
    root.mkdir()
    rule = webhooks_rule(root, url, args.concurrency)
    runner = start_fswatchd(work, rule, 30, [sys.executable, "-c", _LAUNCH, str(source)])
    try:
        daemon = runner.child
        print(f"  daemon pid {daemon.pid}", file=sys.stderr, flush=True)
        daemon.err.count(b"IN_Q_OVERFLOW")
        time.sleep(args.pause)  # for a profiler to attach, not for ordering

        def start() -> int:
            t0 = time.monotonic_ns()
            subprocess.run([producer, "flat", root, str(args.webhooks), "w_"], check=True)
            return t0

        r = _measured(daemon, receiver, args.webhooks, start)
        r["overflows"] = daemon.err.counted(b"IN_Q_OVERFLOW")
    finally:
        runner.finish()
    return r


def _post_floor(
    _source: Path | None, _work: Path, url: str, receiver: Child, _producer: Path,
    args: argparse.Namespace,
) -> dict[str, float]:  # fmt: skip
    """peers/aiohttp_floor.py: one bare aiohttp session posting N bodies (figure 6's floor)."""
    argv = [sys.executable, str(BENCH / "peers/aiohttp_floor.py"), url, str(args.webhooks),
            str(args.concurrency)]  # fmt: skip
    floor = Child(argv)
    try:
        # Its CPU is counted from its first line (printed with the session made, just
        # before the first POST), so its imports are not in it; the few POSTs it makes
        # before /proc is read are (well under 1 % at N = 4,000).
        if not floor.out.wait_lines(1, time.monotonic() + 30):
            raise RuntimeError(f"the aiohttp floor did not start: {floor.stderr_tail()}")
        t0 = int(floor.out.tail().split()[0])
        r = _measured(floor, receiver, args.webhooks, lambda: t0)
        r["overflows"] = 0
    finally:
        floor.finish()
    return r


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--webhooks", type=int, default=4000)
    p.add_argument("--runs", type=int, default=6)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--pause", type=float, default=0.0,
                   help="seconds between printing the daemon's pid and the first file")  # fmt: skip
    p.add_argument("--source", type=Path, action="append",
                   help="a checkout whose fswatchd/ is run (default: this one)")  # fmt: skip
    p.add_argument("--floor", action="store_true",
                   help="alternate figure 6's floor (aiohttp_floor.py) with them")  # fmt: skip
    args = p.parse_args()
    sources: list[Path | None] = [s.resolve() for s in args.source or [BENCH.parent]]
    if args.floor:
        sources.append(None)
    producer = build_producer(BENCH / "build")
    alternate(sources, args.runs, lambda source: one_run(source, producer, args),
              lambda source: str(source or "aiohttp-floor"))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
