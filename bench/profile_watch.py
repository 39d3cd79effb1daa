#!/usr/bin/env python3
"""Profile the watcher side in one process: a frozen backlog drain, or the initial walk.

usage: profile_watch.py drain [--files N] [--dirs D] [--profile py|none] [--phases]
       profile_watch.py ready [--dirs D] [--per-dir F]

``drain``: watch an empty root (tree: D pre-made directories), make N files with the C
producer while the loop is blocked (the watcher is frozen exactly as a SIGSTOP would), then
drain the backlog through ``RecursiveWatcher.batches()`` and ``JsonLinesFormatter`` into
/dev/null, as ``fswatchd watch -r -e ALL --json`` does. Needs the kernel queue to hold the
backlog (4 events a file): run as root with ``--raise-queue``, which sets
fs.inotify.max_queued_events to 1,048,576 for the inotify_init1(2) call and puts the old
value back at once (the kernel reads the sysctl when an instance is created).

``ready``: make (once) the figure-2 tree and time ``RecursiveWatcher.start()`` on it.

Timing goes to stdout; wrap the script in ``py-spy record -o out.svg --`` or pass
``--profile py`` (cProfile, top 25 by total time) to see where the time goes, or
``--phases`` (drain) for the CPU time per event of read(2), parse, engine and JSON lines.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import BinaryIO

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from fswatchd._inotify.fd import DEFAULT_READ_SIZE, InotifyFd  # noqa: E402
from fswatchd._inotify.parse import parse_events  # noqa: E402
from fswatchd.events import Mask  # noqa: E402
from fswatchd.output import JsonLinesFormatter  # noqa: E402
from fswatchd.watch.recursive import RecursiveWatcher, Root  # noqa: E402

QUEUE = Path("/proc/sys/fs/inotify/max_queued_events")
PRODUCER = BENCH / "build" / "producer"


def big_queue_fd(size: int) -> InotifyFd:
    """An InotifyFd created while max_queued_events is ``size``; the old value restored."""
    old = QUEUE.read_text()
    QUEUE.write_text(str(size))
    try:
        return InotifyFd()
    finally:
        QUEUE.write_text(old)


async def drain(args: argparse.Namespace, root: Path) -> None:
    """Freeze, produce, drain; print events/s."""
    for i in range(args.dirs if args.dirs > 1 else 0):
        (root / f"d{i:05d}").mkdir()
    factory = (lambda: big_queue_fd(1 << 20)) if args.raise_queue else InotifyFd
    w = RecursiveWatcher([Root(os.fsencode(root))], int(Mask.ALL), fd_factory=factory)
    await w.start()
    if args.gc_freeze:
        gc.freeze()
    if args.dirs > 1:
        cmd = [PRODUCER, "tree", root, args.dirs, args.files // args.dirs]
    else:
        cmd = [PRODUCER, "flat", root, args.files]
    subprocess.run([str(c) for c in cmd], check=True)  # the loop is blocked: frozen
    (root / "zz-sentinel").write_bytes(b"")
    fmt = JsonLinesFormatter()
    sink = open(os.devnull, "wb")  # noqa: SIM115
    if args.phases:
        phases(w, fmt, sink)
        return
    prof = cProfile.Profile() if args.profile == "py" else None
    lines = 0
    t0 = time.perf_counter()
    if prof:
        prof.enable()
    async for batch in w.batches():
        sink.write(fmt.format(batch))
        lines += len(batch)
        if batch[-1].path is not None and batch[-1].path.endswith(b"/zz-sentinel"):
            break
    if prof:
        prof.disable()
    dt = time.perf_counter() - t0
    w.close()
    sink.close()
    print(f"drain: {lines} lines in {dt:.3f} s = {lines / dt:,.0f} ev/s")
    if prof:
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)


def phases(w: RecursiveWatcher, fmt: JsonLinesFormatter, sink: BinaryIO) -> None:
    """Time read(2), parse, engine and JSON lines per event, one 256 KiB read at a time.

    The reads are done first (their time is the kernel's: copying records out), then each
    read's bytes go through parse_events, Engine.feed and the formatter as the reader and
    ``fswatchd watch`` would hand them over: ~8,000 records alive at a time, not the whole
    backlog. Thread CPU time, so a busy neighbour on the machine does not count.
    """
    fd, engine = w._fd, w._engine  # a profiling tool looks inside
    assert fd is not None and engine is not None
    clock = time.thread_time
    chunks = []
    t0 = clock()
    with contextlib.suppress(BlockingIOError):
        while True:
            chunks.append(fd.read(DEFAULT_READ_SIZE))
    spent = {"read": clock() - t0, "parse": 0.0, "engine": 0.0, "format": 0.0, "write": 0.0}
    n = 0
    for chunk in chunks:
        t0 = clock()
        raw = parse_events(chunk)
        t1 = clock()
        out = engine.feed(raw, time.monotonic())
        t2 = clock()
        data = fmt.format(out)
        t3 = clock()
        sink.write(data)
        t4 = clock()
        spent["parse"] += t1 - t0
        spent["engine"] += t2 - t1
        spent["format"] += t3 - t2
        spent["write"] += t4 - t3
        n += len(raw)
    total = sum(spent.values())
    each = ", ".join(f"{k} {v / n * 1e9:.0f}" for k, v in spent.items())
    print(
        f"{n} records, ns per record: {each}; total {total / n * 1e9:.0f} ns = "
        f"{n / total:,.0f} ev/s (no event loop)"
    )
    w.close()


async def ready(args: argparse.Namespace, root: Path) -> None:
    """Time start() on the mktree tree."""
    marker = root / ".made"
    if not marker.exists():
        subprocess.run(
            [str(PRODUCER), "mktree", str(root), str(args.dirs), str(args.per_dir)], check=True
        )
        marker.write_bytes(b"")
    w = RecursiveWatcher([Root(os.fsencode(root))], int(Mask.ALL))
    prof = cProfile.Profile() if args.profile == "py" else None
    t0 = time.perf_counter()
    if prof:
        prof.enable()
    await w.start()
    if prof:
        prof.disable()
    dt = time.perf_counter() - t0
    rss = [ln for ln in Path("/proc/self/status").read_text().splitlines() if "VmRSS" in ln]
    print(f"ready: {w.watch_count} watches, {w.file_count} files in {dt:.3f} s; {rss[0]}")
    w.close()
    if prof:
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)


def main() -> int:
    """Run the chosen mode."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("mode", choices=("drain", "ready"))
    p.add_argument("--files", type=int, default=100_000)
    p.add_argument("--dirs", type=int, default=1)
    p.add_argument("--per-dir", type=int, default=3)
    p.add_argument("--profile", choices=("py", "none"), default="none")
    p.add_argument("--raise-queue", action="store_true")
    p.add_argument("--phases", action="store_true", help="drain: time each stage per event")
    p.add_argument("--no-gc", action="store_true", help="gc.disable() (to see its share)")
    p.add_argument("--gc-freeze", action="store_true", help="gc.freeze() after start()")
    p.add_argument("--gc-threshold", type=int, help="gc.set_threshold(N) (generation 0)")
    p.add_argument("--tree", type=Path, help="ready: keep the tree here (made once)")
    args = p.parse_args()
    if args.no_gc:
        gc.disable()
    if args.gc_threshold:
        gc.set_threshold(args.gc_threshold)
    if args.mode == "ready" and args.tree:
        args.tree.mkdir(parents=True, exist_ok=True)
        asyncio.run(ready(args, args.tree))
        return 0
    with tempfile.TemporaryDirectory(dir="/dev/shm") as tmp:
        root = Path(tmp) / "root"
        root.mkdir()
        asyncio.run((drain if args.mode == "drain" else ready)(args, root))
    return 0


if __name__ == "__main__":
    sys.exit(main())
