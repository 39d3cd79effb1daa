"""Figures 4-7: the daemon (``fswatchd run``) against floors and peers.

4. latency: one file written every 50 ms into an idle watched directory; the action is
   ``producer stamp FILE``, which writes CLOCK_MONOTONIC at its own start. Latency is that
   stamp minus the harness's clock just before open(2). Floors: an asyncio add_reader
   callback that stamps in-process, and one that spawns the same stamp program.
5. commands/s: N files pre-made beside the inbox are renamed into it by the producer; each
   MOVED_TO runs ``producer action DIR MS PATH`` (counts itself running, sleeps MS, appends
   its end time and PATH, the file it was run for, to DIR/done). Every one of the N files
   must have been acted on at least once; rate is N over first rename to the completion of
   the last file's first action. Kept: the maximum concurrency seen and the number of
   repeated actions (more than one for a file). Peers: ``watchmedo shell-command``, a
   private ``incrond``. Floor: ``producer spawn``, no watcher at all: the same N actions
   started from C, CONC at a time, as fast as posix_spawn and wait allow.
6. webhook POSTs/s: N files written, one POST each to an aiohttp receiver on 127.0.0.1, at
   most 16 at a time. Floor: an aiohttp client posting N bodies, 16 at a time. The
   receiver logs each body's path: N distinct paths must arrive; the number of client
   connections used is kept (keep-alive: at most the concurrency).
7. memory: ``fswatchd run`` with a rule on all events that matches no name while the
   producer churns files (create, write, close, unlink) at a fixed pace; VmRSS sampled
   every 0.25 s; after the first 20 % of the samples (warm-up) it must stay within 10 %.
   The daemon's own count of events processed (its STATUS= line) is kept as well.
"""

from __future__ import annotations

import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .common import Context, interleave, produce, scratch
from .daemon import (
    Runner,
    fswatchd_unavailable,
    incron_unavailable,
    start_fswatchd,
    start_incrond,
    start_stderr_ready,
    start_watchmedo,
    wait_file_lines,
)
from .proc import Child
from .results import Metric
from .watchers import FSWATCHD, PEERS, WatcherSpec, importable

__all__ = [
    "commands_rule",
    "run_commands",
    "run_latency",
    "run_memory",
    "run_webhooks",
    "webhooks_rule",
]

P50 = Metric("p50", "ms")
P99 = Metric("p99", "ms")
RATE = Metric("rate", "/s", "higher")
CONNECTIONS = Metric("connections", "n", "")
MAXCONC = Metric("max concurrent", "n", "")
REPEATED = Metric("repeated actions", "n", "")
RSS_MAX = Metric("rss max", "KiB")
SPREAD = Metric("rss spread", "%")
FLAT = Metric("flat (<=10%)", "1/0", "higher")
EVENTS_SEEN = Metric("events processed", "n", "")


def _spec(name: str, unavailable: Callable[[], str | None]) -> WatcherSpec:
    """A name and an availability check; the figure knows how to start it."""
    return WatcherSpec(name, lambda _root: [], None, "", unavailable)


def _has_module(module: str) -> Callable[[], str | None]:
    return lambda: None if importable(module) else f"{module} not installed (make bench)"


FSWATCHD_RUN = _spec(FSWATCHD, fswatchd_unavailable)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# ---- figure 4 -------------------------------------------------------------------------


def _latencies(ctx: Context, root: Path, stamps: Path) -> list[float]:
    out = []
    for i in range(ctx.sizes["latency_samples"]):
        time.sleep(0.05)  # idle between writes: the daemon is waiting, not busy
        t_w = time.monotonic_ns()
        (root / f"l{i:05d}").write_bytes(b"x")
        lines = wait_file_lines(stamps, i + 1, time.monotonic() + ctx.timeout)
        if len(lines) <= i:
            raise RuntimeError(f"write {i}: no action within {ctx.timeout:.0f} s")
        out.append((int(lines[i].split()[1]) - t_w) / 1e6)
    return out


def run_latency(ctx: Context) -> None:
    """Figure 4: write-to-action-start latency, p50 and p99."""
    floor = [sys.executable, str(PEERS / "asyncio_floor.py")]
    specs = (FSWATCHD_RUN, _spec("asyncio-callback", lambda: None),
             _spec("asyncio-spawn", lambda: None))  # fmt: skip

    def measure(spec: WatcherSpec, run_no: int, warm: bool) -> None:
        with scratch(ctx, "latency") as work:
            root, stamps = work / "root", work / "stamps"
            root.mkdir()
            if spec is FSWATCHD_RUN:
                stamp = [str(ctx.producer), "stamp", str(stamps)]
                rule = {"watch": str(root), "events": ["CLOSE_WRITE"], "actions": [{"run": stamp}]}
                runner = start_fswatchd(work, rule, ctx.timeout)
            else:
                mode = spec.name.split("-")[1]
                argv = [*floor, str(root), str(stamps), mode, str(ctx.producer)]
                runner = start_stderr_ready(argv, ctx.timeout)
            try:
                lat = _latencies(ctx, root, stamps)
            finally:
                runner.finish()
        ctx.results.add(4, "idle", P50, spec.name, run_no, warm, statistics.median(lat))
        ctx.results.add(4, "idle", P99, spec.name, run_no, warm, _percentile(lat, 0.99))

    interleave(ctx, 4, "idle", specs, measure, (P50, P99))


# ---- figure 5 -------------------------------------------------------------------------


def _probe(runner: Runner, inbox: Path, counter: Path, timeout: float) -> None:
    """Rename probe files into the inbox until one action ran; then reset the counters."""
    deadline = time.monotonic() + timeout
    k = 0
    while not wait_file_lines(counter / "done", 1, time.monotonic() + 0.2):
        if time.monotonic() > deadline or not runner.child.alive():
            raise RuntimeError(f"no action for the probe: {runner.child.stderr_tail()}")
        probe = inbox.parent / f"probe{k}"
        probe.write_bytes(b"")
        probe.rename(inbox / probe.name)
        k += 1
    time.sleep(0.3)  # let the probes' other actions finish before the counters are reset
    for name in ("done", "max", "running"):
        (counter / name).unlink(missing_ok=True)


def commands_rule(
    producer: Path, inbox: Path, counter: Path, action_ms: int, concurrency: int
) -> dict[str, Any]:
    """Figure 5's rule for ``fswatchd run``: each MOVED_TO into ``inbox`` runs ``producer
    action COUNTER MS {path}``, at most ``concurrency`` at a time."""
    argv = [str(producer), "action", str(counter), str(action_ms), "{path}"]
    return {"watch": str(inbox), "events": ["MOVED_TO"], "concurrency": concurrency,
            "actions": [{"run": argv}]}  # fmt: skip


def _start_commands(
    ctx: Context, spec: WatcherSpec, work: Path, inbox: Path, counter: Path
) -> Runner:
    if spec is FSWATCHD_RUN:
        rule = commands_rule(ctx.producer, inbox, counter, ctx.sizes["action_ms"],
                             ctx.sizes["concurrency"])  # fmt: skip
        return start_fswatchd(work, rule, ctx.timeout)
    argv = [str(ctx.producer), "action", str(counter), str(ctx.sizes["action_ms"])]
    # Each peer's own placeholder for the event's full path. Both go through /bin/sh -c
    # (the file names here are plain m_NNNNNNN: nothing for the shell to interpret).
    if spec.name == "incron":
        runner = start_incrond(work, inbox, " ".join([*argv, "$@/$#"]))
    else:
        runner = start_watchmedo(inbox, " ".join([*argv, "${watch_src_path}"]))
    try:
        _probe(runner, inbox, counter, ctx.timeout)
    except BaseException:
        runner.finish()
        raise
    return runner


def _acted_on(done: Path, expected: set[bytes], deadline: float) -> dict[bytes, list[int]]:
    """Wait until every expected path has a line in ``done`` (``<pid> <ns> <path>``) or the
    monotonic deadline; the end stamps (CLOCK_MONOTONIC ns) of each expected path's
    actions. Lines for other paths (a late probe) are ignored."""
    stamps: dict[bytes, list[int]] = {}
    while True:
        # Cheap first: a line count below N cannot hold every path.
        lines = wait_file_lines(done, len(expected), deadline, 0.01)
        stamps.clear()
        for line in lines:
            _pid, ns, path = line.split(b" ", 2)
            if path in expected:
                stamps.setdefault(path, []).append(int(ns))
        if len(stamps) == len(expected) or time.monotonic() > deadline:
            return stamps
        time.sleep(0.01)


def run_commands(ctx: Context) -> None:
    """Figure 5: files renamed into a watched inbox, one command each."""
    n = ctx.sizes["commands"]
    floor = _spec("spawn-floor", lambda: None)
    specs = (FSWATCHD_RUN, _spec("incron", incron_unavailable),
             _spec("watchmedo", _has_module("watchdog.watchmedo")), floor)  # fmt: skip
    case = f"{n} renames"

    def measure(spec: WatcherSpec, run_no: int, warm: bool) -> None:
        with scratch(ctx, "commands") as work:
            inbox, staging, counter = work / "inbox", work / "staging", work / "count"
            for d in (inbox, staging, counter):
                d.mkdir()
            produce(ctx, "flat", staging, n, "m_")
            expected = {bytes(inbox / f"m_{i:07d}") for i in range(n)}
            runner = None if spec is floor else _start_commands(ctx, spec, work, inbox, counter)
            try:
                t0 = time.monotonic_ns()
                if runner is None:  # the floor: the same actions, started from C, no watcher
                    produce(ctx, "spawn", counter, ctx.sizes["action_ms"], n,
                            ctx.sizes["concurrency"], inbox, "m_")  # fmt: skip
                else:
                    produce(ctx, "rename", staging, inbox, n, "m_")
                stamps = _acted_on(counter / "done", expected, time.monotonic() + ctx.timeout)
            finally:
                if runner is not None:
                    runner.finish()
            if len(stamps) < n:
                missing = sorted(expected - stamps.keys())
                raise RuntimeError(f"{len(stamps)} of {n} files acted on; not {missing[0]!r}")
            end = max(min(ends) for ends in stamps.values())
            repeated = sum(len(ends) for ends in stamps.values()) - n
            peak = int((counter / "max").read_text())
        ctx.results.add(5, case, RATE, spec.name, run_no, warm, n / ((end - t0) / 1e9))
        ctx.results.add(5, case, MAXCONC, spec.name, run_no, warm, peak)
        ctx.results.add(5, case, REPEATED, spec.name, run_no, warm, repeated)

    interleave(ctx, 5, case, specs, measure, (RATE, MAXCONC, REPEATED))


# ---- figure 6 -------------------------------------------------------------------------


def run_webhooks(ctx: Context) -> None:
    """Figure 6: one POST per file to a local aiohttp receiver, 16 at a time."""
    n = ctx.sizes["webhooks"]
    specs = (FSWATCHD_RUN, _spec("aiohttp-floor", lambda: None))
    case = f"{n} POSTs"

    def measure(spec: WatcherSpec, run_no: int, warm: bool) -> None:
        with scratch(ctx, "webhooks") as work:
            log = work / "received"
            argv = [sys.executable, str(PEERS / "receiver.py")]
            receiver = start_stderr_ready(argv, ctx.timeout, tee=log)
            try:
                port = int(receiver.child.err.tail().split(b"READY ")[1].split()[0])
                t0 = _post_all(ctx, spec, work, f"http://127.0.0.1:{port}/hook", receiver)
            finally:
                receiver.finish()
            received = [line.split(maxsplit=2) for line in log.read_bytes().splitlines()]
        paths = {path for _, _, path in received}
        if len(paths) != n:
            raise RuntimeError(f"{len(received)} POSTs for {len(paths)} distinct paths, not {n}")
        last = max(int(stamp) for stamp, _, _ in received)
        ports = {port for _, port, _ in received}
        ctx.results.add(6, case, RATE, spec.name, run_no, warm, n / ((last - t0) / 1e9))
        ctx.results.add(6, case, CONNECTIONS, spec.name, run_no, warm, len(ports))

    interleave(ctx, 6, case, specs, measure, (RATE, CONNECTIONS))


def webhooks_rule(root: Path, url: str, concurrency: int) -> dict[str, Any]:
    """Figure 6's rule for ``fswatchd run``: each CLOSE_WRITE in ``root`` POSTs the event to
    ``url`` (no retries), at most ``concurrency`` at a time."""
    return {"watch": str(root), "events": ["CLOSE_WRITE"], "concurrency": concurrency,
            "actions": [{"webhook": {"url": url, "retries": 0}}]}  # fmt: skip


def _post_all(ctx: Context, spec: WatcherSpec, work: Path, url: str, receiver: Runner) -> int:
    """Make the N POSTs happen and wait until the receiver has them; their start (mono ns)."""
    n, conc = ctx.sizes["webhooks"], ctx.sizes["concurrency"]
    if spec is FSWATCHD_RUN:
        root = work / "root"
        root.mkdir()
        runner = start_fswatchd(work, webhooks_rule(root, url, conc), ctx.timeout)
        t0 = time.monotonic_ns()
        argv = [str(ctx.producer), "flat", str(root), str(n), "w_"]
    else:
        runner = None
        argv = [sys.executable, str(PEERS / "aiohttp_floor.py"), url, str(n), str(conc)]
    client = Child(argv)
    try:
        if runner is None:  # the floor prints its own start time
            client.out.wait_lines(1, time.monotonic() + ctx.timeout)
            t0 = int(client.out.tail().split()[0])
        if not receiver.child.out.wait_lines(n, time.monotonic() + ctx.timeout):
            raise RuntimeError(f"{receiver.child.out.lines} of {n} POSTs arrived")
    finally:
        client.finish()
        if runner is not None:
            runner.finish()
    return t0


# ---- figure 7 -------------------------------------------------------------------------


def run_memory(ctx: Context) -> None:
    """Figure 7: fswatchd's RSS while it processes many events (fswatchd only)."""
    events = ctx.sizes["memory_events"]
    case = f"{events} events"
    iterations = events // 5  # create, open, modify, close_write, delete per iteration

    def measure(spec: WatcherSpec, run_no: int, warm: bool) -> None:
        with scratch(ctx, "memory") as work:
            root = work / "root"
            root.mkdir()
            # ALL: the daemon must read, match and count every one of the 5 events an
            # iteration makes (the default CLOSE_WRITE|MOVED_TO would be 1 in 5).
            rule = {
                "watch": str(root),
                "events": ["ALL"],
                "include": ["*.never-matches"],
                "actions": [{"run": ["true"]}],
            }
            runner = start_fswatchd(work, rule, ctx.timeout)
            try:
                samples = _sample_while(ctx, runner.child, root, iterations)
                seen = _events_processed(runner, iterations * 5, time.monotonic() + 10)
            finally:
                runner.finish()
        steady = samples[len(samples) // 5 :] or samples
        spread = 100.0 * (max(steady) - min(steady)) / min(steady)
        res = ctx.results
        res.add(7, case, RSS_MAX, spec.name, run_no, warm, max(steady), series=samples)
        res.add(7, case, SPREAD, spec.name, run_no, warm, spread)
        res.add(7, case, FLAT, spec.name, run_no, warm, float(spread <= 10.0))
        res.add(7, case, EVENTS_SEEN, spec.name, run_no, warm, seen)

    interleave(ctx, 7, case, (FSWATCHD_RUN,), measure, (RSS_MAX, SPREAD, FLAT, EVENTS_SEEN))


def _events_processed(runner: Runner, expected: int, deadline: float) -> int:
    """The event count of fswatchd's latest STATUS= line (``...; N events; ...``), waiting
    until it reaches ``expected`` or the monotonic deadline (STATUS comes every 2 s)."""
    assert runner.notify is not None
    seen = 0
    while seen < expected and (left := deadline - time.monotonic()) > 0:
        runner.notify.sock.settimeout(left)
        try:
            data = runner.notify.sock.recv(65536)
        except TimeoutError:
            break
        if found := re.search(rb"STATUS=.*?(\d+) events", data):
            seen = max(seen, int(found.group(1)))
    return seen


def _sample_while(ctx: Context, child: Child, root: Path, iterations: int) -> list[int]:
    rate = 10_000  # iterations/s: 50,000 events/s, a steady load below overflow
    producer = Child([str(ctx.producer), "churn", str(root), str(iterations), str(rate)])
    samples = []
    while producer.alive():
        samples.append(child.memory().get("VmRSS", 0))
        time.sleep(0.25)
    producer.finish()
    return samples
