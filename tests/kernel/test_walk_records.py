"""The initial walk records files without lstat; the records are completed once idle.

readdir(3) gives each entry's inode and type, so the walk to READY makes no lstat(2) per
file. Size and mtime follow while the watcher is idle. An overflow before that judges
those files by their ctime: unchanged files are not reported, changed ones are, even when
size and mtime were put back; a renamed one is still a rename.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from watchkit import DEADLINE, Driver

from fswatchd._inotify.limits import queued_events_limit
from fswatchd.events import Mask
from fswatchd.watch.records import WALK_SLACK_NS
from fswatchd.watch.scan import read_dir, stat_record
from fswatchd.watch.tree import KIND_OTHER, KIND_REG, KIND_SYMLINK, unpack_record

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]


def touch(path: bytes, data: bytes = b"") -> None:
    with open(path, "wb") as f:
        f.write(data)


def test_read_dir_without_lstat_gives_inode_and_kind(tmp_path: Path) -> None:
    """readdir alone: inode = st_ino, kind from d_type, record not clean; dirs listed apart."""
    base = os.fsencode(tmp_path)
    touch(base + b"/reg", b"data")
    os.symlink(b"/nonexistent", base + b"/link")
    os.mkfifo(base + b"/fifo")
    os.mkdir(base + b"/sub")
    dirs, files = read_dir(base, lstat=False)
    assert dirs == [b"sub"]
    kinds = {b"reg": KIND_REG, b"link": KIND_SYMLINK, b"fifo": KIND_OTHER}
    assert files.keys() == kinds.keys()
    for name, rec in files.items():
        ino, size, mtime, kind, clean = unpack_record(rec)
        assert (ino, kind, clean) == (os.lstat(base + b"/" + name).st_ino, kinds[name], False)
        assert (size, mtime) == (0, 0)
    _, full = read_dir(base)
    assert all(unpack_record(rec)[4] for rec in full.values())


async def test_records_are_completed_when_idle(tmp_path: Path) -> None:
    """1. A tree of 40 directories with files. 2. Right after start the records wait.
    3. Idle, the watcher completes them: every record equals a fresh lstat's."""
    tree = os.fsencode(tmp_path) + b"/tree"
    for i in range(40):
        os.makedirs(tree + b"/d%d" % i)
        touch(tree + b"/d%d/f" % i, b"x" * i)
    async with Driver([tree]) as d:
        assert d.watcher.records_pending > 0
        # The records are completed while batches() waits for events: let it wait.
        consumer = asyncio.create_task(d.next_batch())
        async with asyncio.timeout(DEADLINE):
            await d.watcher.records_complete()
            assert d.watcher.records_pending == 0
            touch(tree + b"/release")
            await consumer
        engine = d.watcher._engine  # the view's records are not public: peek for the test
        assert engine is not None
        for node in engine.tree.walk(engine.tree.roots[tree]):
            base = engine.tree.path(node) + b"/"
            for name, rec in node.files.items():
                if name == b"release":  # made after: its record waits for Engine.settle
                    continue
                assert rec == stat_record(os.lstat(base + name)), base + name


async def test_overflow_before_records_complete_judges_by_ctime(tmp_path: Path) -> None:
    """1. keep/{same,mod,ren,gone} made well before the start (> WALK_SLACK_NS).
    2. Right after start, before any record is completed: overflow the queue, rewrite
       ``mod`` with the same size and put its mtime back, rename ``ren``, delete ``gone``.
    3. The repair reports MODIFY+CLOSE_WRITE for mod (its ctime moved), MOVED_TO ren2
       (src ren), DELETE gone, and nothing for ``same``; the views agree."""
    tree = os.fsencode(tmp_path) + b"/tree"
    keep = tree + b"/keep"
    os.makedirs(keep)
    for name in (b"same", b"mod", b"ren", b"gone"):
        touch(keep + b"/" + name, b"1")
    os.mkdir(tree + b"/flood")
    before = os.lstat(keep + b"/mod")
    # ctime has no setter: let the clock pass the slack instead (not an ordering wait).
    time.sleep(2 * WALK_SLACK_NS / 1e9)
    async with Driver([tree]) as d:
        assert d.watcher.records_pending > 0
        for i in range((queued_events_limit() or 16384) // 2 + 100):
            os.close(os.open(tree + b"/flood/f%d" % i, os.O_CREAT | os.O_WRONLY, 0o644))
        touch(keep + b"/mod", b"2")
        os.utime(keep + b"/mod", ns=(before.st_atime_ns, before.st_mtime_ns))
        os.rename(keep + b"/ren", keep + b"/ren2")
        os.unlink(keep + b"/gone")
        events = await d.barrier()
        at = [k for k, e in enumerate(events) if e.mask & Mask.Q_OVERFLOW]
        assert len(at) == 1
        after = events[at[0] :]
        assert keep + b"/mod" in d.paths(Mask.MODIFY, after)
        assert keep + b"/mod" in d.paths(Mask.CLOSE_WRITE, after)
        assert keep + b"/same" not in d.paths(Mask.ALL, after)
        moves = {(e.path, e.src_path) for e in after if e.mask & Mask.MOVED_TO}
        assert (keep + b"/ren2", keep + b"/ren") in moves
        assert keep + b"/gone" in d.paths(Mask.DELETE, after)
        d.check_views()
        assert d.watcher.records_pending == 0  # the rescan read every record in full
