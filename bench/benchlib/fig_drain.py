"""Figure 1: backlog drain through ``fswatchd watch -r --json`` and its peers.

The issue's figure - N files made while the watcher is stopped, then drained - needs a
kernel queue that holds the whole backlog: the kernel queues at most
``max_queued_events`` (16,384 by default) per instance and drops the rest (IN_Q_OVERFLOW).
So it is measured three ways, for a flat directory and for a tree of pre-made directories:

* ``backlog`` (the issue's figure; root only): fs.inotify.max_queued_events is raised to
  ``BACKLOG_QUEUE`` while the watcher starts (the kernel reads it in inotify_init1(2), so
  only that instance gets the big queue) and put back as soon as it is ready, in a
  ``finally``. The watcher is frozen (SIGSTOP), the producer makes all N files (4N
  events), a sentinel is created, the watcher is thawed; the time until the sentinel's
  line is out is the drain.

* ``batched``: the watcher is frozen (SIGSTOP), the C producer makes a batch small enough
  to fit the queue (60 % of it), a sentinel file is created, the watcher is thawed
  (SIGCONT) and the time until the sentinel's line is out is summed over all batches.
  This is the drain of a real backlog, N files in total.
* ``live``: the watcher runs while the producer floods all N files at full speed; after
  the producer exits, sentinels are created every 20 ms until one is reported. The time is
  producer start to the sentinel. Overflows the watcher reports are counted.

Each file is IN_CREATE, IN_OPEN, IN_MODIFY, IN_CLOSE_WRITE: 4 kernel events.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from .common import Context, interleave, kernel_limit, produce, scratch, sentinel
from .proc import OutputCounter
from .results import Metric
from .watchers import STREAM_WATCHERS, Started, WatcherSpec, start_watcher

__all__ = ["BACKLOG_QUEUE", "EVENTS_PER_FILE", "run"]

EVENTS_PER_FILE = 4
#: max_queued_events for the ``backlog`` mode: room for 250,000 files' events.
BACKLOG_QUEUE = 1 << 20
_QUEUE_SYSCTL = Path("/proc/sys/fs/inotify/max_queued_events")
DRAIN = Metric("drain", "s")
RATE = Metric("events/s", "ev/s", "higher")
FILES = Metric("files/s", "files/s", "higher")
CPU = Metric("cpu", "s")
OVERFLOWS = Metric("overflows", "n", "")


def _batches(files: int, dirs: int, queue: int) -> list[int]:
    """Files per directory for each batch, so no batch exceeds 60 % of the kernel queue."""
    budget = int(queue * 0.6) // EVENTS_PER_FILE
    if dirs > budget:
        raise ValueError(f"{dirs} directories do not fit one batch of {budget} files")
    per_dir_total = max(1, files // dirs)
    step = max(1, budget // dirs)
    return [min(step, per_dir_total - k) for k in range(0, per_dir_total, step)]


def _make_dirs(root: Path, dirs: int) -> None:
    for i in range(dirs):
        (root / f"d{i:05d}").mkdir()


def _produce_batch(ctx: Context, root: Path, dirs: int, per_dir: int, prefix: str) -> None:
    if dirs == 1:
        produce(ctx, "flat", root, per_dir, prefix)
    else:
        produce(ctx, "tree", root, dirs, per_dir, prefix)


def _drained(started: Started, out: OutputCounter, seconds: float) -> dict[str, float]:
    """One watcher's drain: ``seconds`` to the sentinel, lines, overflows, CPU seconds."""
    return {
        "time": seconds,
        "lines": out.lines,
        "overflows": out.counted(b"Q_OVERFLOW"),
        "cpu": started.child.cpu_seconds() or 0.0,
    }


def _batched(
    ctx: Context, spec: WatcherSpec, root: Path, work: Path, dirs: int
) -> dict[str, float]:
    started = start_watcher(spec, root, work, timeout=ctx.timeout)
    out = started.child.out
    out.count(b"Q_OVERFLOW")
    drain = 0.0
    try:
        for k, per_dir in enumerate(_batches(ctx.sizes["drain_files"], dirs, ctx.meta["queue"])):
            started.child.freeze()
            _produce_batch(ctx, root, dirs, per_dir, f"b{k:03d}_")
            mark = sentinel(root, k, out)
            t0 = time.monotonic()
            started.child.thaw()
            seen = out.wait_for(mark, t0 + ctx.timeout)
            if seen is None:
                raise RuntimeError(
                    f"batch {k}: sentinel not reported ({started.child.stderr_tail()})"
                )
            drain += seen - t0
    finally:
        started.finish()
    return _drained(started, out, drain)


def _backlog(
    ctx: Context, spec: WatcherSpec, root: Path, work: Path, dirs: int
) -> dict[str, float]:
    files = ctx.sizes["drain_files"]
    if files * EVENTS_PER_FILE >= BACKLOG_QUEUE:
        raise RuntimeError(f"{files} files do not fit a queue of {BACKLOG_QUEUE} events")
    old = _QUEUE_SYSCTL.read_text()
    try:
        _QUEUE_SYSCTL.write_text(str(BACKLOG_QUEUE))
        started = start_watcher(spec, root, work, timeout=ctx.timeout)
    finally:
        _QUEUE_SYSCTL.write_text(old)
    out = started.child.out
    out.count(b"Q_OVERFLOW")
    try:
        started.child.freeze()
        _produce_batch(ctx, root, dirs, max(1, files // dirs), "k_")
        mark = sentinel(root, 0, out)
        t0 = time.monotonic()
        started.child.thaw()
        seen = out.wait_for(mark, t0 + ctx.timeout)
        if seen is None:
            raise RuntimeError(f"sentinel not reported ({started.child.stderr_tail()})")
    finally:
        started.finish()
    return _drained(started, out, seen - t0)


def _can_raise_queue() -> bool:
    """Whether this process may write fs.inotify.max_queued_events (root)."""
    return os.access(_QUEUE_SYSCTL, os.W_OK)


def _live(ctx: Context, spec: WatcherSpec, root: Path, work: Path, dirs: int) -> dict[str, float]:
    started = start_watcher(spec, root, work, timeout=ctx.timeout)
    out = started.child.out
    out.count(b"Q_OVERFLOW")
    try:
        t0 = time.monotonic()
        _produce_batch(ctx, root, dirs, max(1, ctx.sizes["drain_files"] // dirs), "l_")
        seen = None
        for k in range(int(ctx.timeout / 0.02)):
            # A sentinel made while the queue is full is dropped; the next one gets in.
            seen = out.wait_for(sentinel(root, k, out), time.monotonic() + 0.02)
            if seen is not None or not started.child.alive():
                break
        if seen is None:
            raise RuntimeError(f"sentinel not reported ({started.child.stderr_tail()})")
    finally:
        started.finish()
    return _drained(started, out, seen - t0)


def run(ctx: Context) -> None:
    """Measure figure 1 for the flat and tree layouts, batched and live."""
    ctx.meta.setdefault("queue", kernel_limit("max_queued_events"))
    layouts = {"flat": 1, "tree": ctx.sizes["drain_dirs"]}
    metrics = (DRAIN, RATE, FILES, CPU, OVERFLOWS)
    modes = [("batched", _batched), ("live", _live)]
    if _can_raise_queue():
        modes.insert(0, ("backlog", _backlog))
    else:
        ctx.log("fig 1: backlog mode skipped: raising fs.inotify.max_queued_events needs root")
    wanted = ctx.meta.get("drain_modes") or [m for m, _ in modes]
    for mode, how in [(m, h) for m, h in modes if m in wanted]:
        for layout, dirs in layouts.items():
            case = f"{mode} {layout}"

            def measure(
                spec: WatcherSpec, run_no: int, warm: bool, how=how, dirs=dirs, case=case
            ) -> None:
                with scratch(ctx, "drain") as work:
                    root = work / "root"
                    root.mkdir()
                    _make_dirs(root, dirs if dirs > 1 else 0)
                    got = how(ctx, spec, root, work, dirs)
                files = ctx.sizes["drain_files"]
                extra = {"lines": got["lines"]}
                res = ctx.results
                res.add(1, case, DRAIN, spec.name, run_no, warm, got["time"], **extra)
                res.add(1, case, RATE, spec.name, run_no, warm, got["lines"] / got["time"])
                res.add(1, case, FILES, spec.name, run_no, warm, files / got["time"])
                res.add(1, case, CPU, spec.name, run_no, warm, got["cpu"])
                res.add(1, case, OVERFLOWS, spec.name, run_no, warm, got["overflows"])

            interleave(ctx, 1, case, STREAM_WATCHERS, measure, metrics)
