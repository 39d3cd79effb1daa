"""Figure 3: a live burst with the default kernel queue, and the repair after an overflow.

* ``burst``: the watcher runs on an empty root while the C producer makes D new
  directories with F files each at full speed (directories made during the burst: a
  watcher must scan each new directory, inotify(7) reports nothing made in it before its
  watch exists). Then sentinels until one is reported or the output stays quiet (``quiet_ms``, 2 s).
  The output is replayed into a view of the tree and compared with the tree on disk.
* ``repair``: a tree of R files exists and is watched; the watcher is frozen; the producer
  makes 1.5 x the kernel queue's worth of events (an overflow for certain) and a sentinel,
  which the kernel drops; the watcher is thawed. Only a watcher that rescans after
  IN_Q_OVERFLOW can report the sentinel; repair time is thaw to the end of its output,
  counted only when its view then equals the tree.

Reported: time, overflows reported, paths missing from the view, loss % of the new paths,
and whether the view equals the tree (1/0).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from .common import Context, interleave, kernel_limit, produce, scratch, sentinel, tree_paths
from .fig_drain import EVENTS_PER_FILE
from .proc import OutputCounter
from .results import Metric
from .view import compare, replay
from .watchers import STREAM_WATCHERS, Started, WatcherSpec, start_watcher

__all__ = ["run"]

TIME = Metric("time", "s")
REPAIR = Metric("repair", "s")
OVERFLOWS = Metric("overflows", "n", "")
MISSING = Metric("missing", "paths")
LOSS = Metric("loss", "%")
EQUAL = Metric("view == tree", "1/0", "higher")


def _settle(out: OutputCounter, mark: bytes, t0: float, quiet: float, timeout: float) -> float:
    """Wait for ``mark`` or for ``quiet`` s without output; then 0.5 s of quiet. Last output."""
    deadline = t0 + timeout
    while time.monotonic() < deadline:
        if out.wait_for(mark, time.monotonic() + 0.1) is not None or out.eof:
            break
        if time.monotonic() - max(out.last_time, t0) > quiet:
            break
    return out.wait_quiet(0.5, deadline)


def _finish(
    started: Started, tee: Path, spec: WatcherSpec, before: set[bytes], root: Path
) -> dict[str, float]:
    started.finish()
    tree = tree_paths(root)
    got = replay(tee, spec.output, before)
    result = compare(got.view, tree, tree - before)
    result["overflows"] = got.overflows
    return result


def _burst(ctx: Context, spec: WatcherSpec, work: Path, root: Path) -> dict[str, float]:
    tee = work / "out"
    started = start_watcher(spec, root, work, timeout=ctx.timeout, tee=tee)
    out = started.child.out
    try:
        dirs = ctx.sizes["burst_dirs"]
        t0 = time.monotonic()
        produce(ctx, "tree", root, dirs, ctx.sizes["burst_files"] // dirs)
        mark = b""
        for k in range(int(ctx.timeout / 0.05)):
            # A sentinel made while the queue is full is dropped; the next one gets in.
            mark = sentinel(root, k, out)
            if out.wait_for(mark, time.monotonic() + 0.05) is not None or out.eof:
                break
            if time.monotonic() - max(out.last_time, t0) > ctx.sizes["quiet_ms"] / 1000:
                break
        end = _settle(out, mark, t0, ctx.sizes["quiet_ms"] / 1000, ctx.timeout)
    except BaseException:
        started.finish()
        raise
    result = _finish(started, tee, spec, set(), root)
    result["time"] = end - t0
    return result


def _repair(ctx: Context, spec: WatcherSpec, work: Path, root: Path) -> dict[str, float]:
    tee = work / "out"
    before = tree_paths(root)
    started = start_watcher(spec, root, work, timeout=ctx.timeout, tee=tee)
    out = started.child.out
    try:
        started.child.freeze()
        flood = math.ceil(1.5 * ctx.meta["queue"] / EVENTS_PER_FILE)
        produce(ctx, "flat", root / "d00000", flood, "o_")
        mark = sentinel(root, 0, out)
        t0 = time.monotonic()
        started.child.thaw()
        end = _settle(out, mark, t0, ctx.sizes["quiet_ms"] / 1000, ctx.timeout)
    except BaseException:
        started.finish()
        raise
    result = _finish(started, tee, spec, before, root)
    result["time"] = end - t0
    return result


def run(ctx: Context) -> None:
    """Measure figure 3: the live burst, then the overflow repair."""
    ctx.meta.setdefault("queue", kernel_limit("max_queued_events"))
    cases = {
        f"burst {ctx.sizes['burst_files']} files": _burst,
        f"repair {ctx.sizes['repair_files']} files": _repair,
    }
    for case, how in cases.items():

        def measure(spec: WatcherSpec, run_no: int, warm: bool, how=how, case=case) -> None:
            with scratch(ctx, "burst") as work:
                root = work / "root"
                root.mkdir()
                if how is _repair:
                    dirs = max(1, ctx.sizes["repair_files"] // 100)
                    produce(ctx, "tree", root, dirs, ctx.sizes["repair_files"] // dirs)
                got = how(ctx, spec, work, root)
            res = ctx.results
            timed = TIME if how is _burst else REPAIR
            ok = how is _burst or got["equal"]
            res.add(3, case, timed, spec.name, run_no, warm, got["time"] if ok else None,
                    None if ok else "no repair: view differs from the tree")  # fmt: skip
            res.add(3, case, OVERFLOWS, spec.name, run_no, warm, got["overflows"])
            res.add(3, case, MISSING, spec.name, run_no, warm, got["missing"], extra=got["extra"])
            res.add(3, case, LOSS, spec.name, run_no, warm, got["loss_pct"])
            res.add(3, case, EQUAL, spec.name, run_no, warm, got["equal"])

        interleave(ctx, 3, case, STREAM_WATCHERS, measure, (TIME, OVERFLOWS, MISSING, LOSS))
