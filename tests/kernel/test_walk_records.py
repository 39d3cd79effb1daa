"""The initial walk records files from readdir alone; an overflow judges them by ctime.

readdir(3) gives each entry's inode and type, so the walk to READY makes no lstat(2) per
file. An overflow repair then tells a changed file by its ctime (which nothing can set
back): unchanged files are not reported, changed ones are even when size and mtime were
put back, and a renamed one is still a rename.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from watchkit import Driver, after_overflow, flood, let_ctime_age, touch

from fswatchd.events import Mask
from fswatchd.watch.records import WALK_SLACK_NS, changed_since_walk
from fswatchd.watch.scan import read_dir, read_listing
from fswatchd.watch.tree import (
    KIND_OTHER,
    KIND_REG,
    KIND_SYMLINK,
    is_walk_record,
    listing_items,
    pack_listing,
    unpack_listing,
    unpack_record,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]

SECOND = 1_000_000_000


def test_read_listing_gives_walk_records(tmp_path: Path) -> None:
    """readdir alone: inode = st_ino, kind from d_type, a walk record in a packed listing
    (hostile names included); dirs listed apart."""
    base = os.fsencode(tmp_path)
    touch(base + b"/reg", b"data")
    os.symlink(b"/nonexistent", base + b"/link")
    os.mkfifo(base + b"/fifo")
    os.mkdir(base + b"/sub")
    touch(base + b"/\xff new\nline;$(x)", b"")
    touch(base + b"/" + b"n" * 255, b"")
    dirs, listing = read_listing(base)
    assert dirs == [b"sub"]
    files = unpack_listing(listing)
    assert list(listing_items(listing)) == list(files.items())
    assert pack_listing(files.items()) == listing
    kinds = {b"reg": KIND_REG, b"link": KIND_SYMLINK, b"fifo": KIND_OTHER}
    kinds |= {b"\xff new\nline;$(x)": KIND_REG, b"n" * 255: KIND_REG}
    assert files.keys() == kinds.keys()
    for name, rec in files.items():
        assert is_walk_record(rec)
        ino = os.lstat(base + b"/" + name).st_ino
        assert unpack_record(rec) == (ino, 0, 0, kinds[name], False)
    _, full = read_dir(base)
    assert not any(is_walk_record(rec) for rec in full.values())


def test_changed_since_walk_reads_ctime_and_distrusts_a_clock_stepped_back(
    tmp_path: Path,
) -> None:
    """A file is unchanged only when its ctime is older than the walk (minus the slack) and
    the realtime clock has not been stepped back since; walk clocks are fabricated."""
    path = os.fsencode(tmp_path) + b"/f"
    touch(path)
    now, mono = time.time_ns(), time.monotonic_ns()
    assert not changed_since_walk(path, (now + SECOND, mono + SECOND))  # walk after the file
    assert changed_since_walk(path, (now - SECOND, mono - SECOND))  # walk before the file
    assert changed_since_walk(path, (now + WALK_SLACK_NS // 2, mono + WALK_SLACK_NS // 2))
    assert changed_since_walk(path, (now + SECOND, mono))  # realtime stepped back 1 s since
    assert changed_since_walk(path, None)
    assert changed_since_walk(path + b"-gone", (now + SECOND, mono + SECOND))


async def test_overflow_judges_walk_records_by_ctime(tmp_path: Path) -> None:
    """1. keep/{same,mod,ren,gone} made well before the start (> WALK_SLACK_NS).
    2. Frozen right after the start: overflow the queue, rewrite ``mod`` with the same
       size and put its mtime back, rename ``ren``, delete ``gone``.
    3. The repair reports MODIFY+CLOSE_WRITE for mod (its ctime moved), MOVED_TO ren2
       (src ren), DELETE gone, and nothing for ``same``; the views agree."""
    tree = os.fsencode(tmp_path) + b"/tree"
    keep = tree + b"/keep"
    os.makedirs(keep)
    os.mkdir(tree + b"/flood")
    for name in (b"same", b"mod", b"ren", b"gone"):
        touch(keep + b"/" + name, b"1")
    before = os.lstat(keep + b"/mod")
    let_ctime_age()
    async with Driver([tree]) as d:
        flood(tree + b"/flood")
        touch(keep + b"/mod", b"2")
        os.utime(keep + b"/mod", ns=(before.st_atime_ns, before.st_mtime_ns))
        os.rename(keep + b"/ren", keep + b"/ren2")
        os.unlink(keep + b"/gone")
        after = after_overflow(await d.barrier())
        assert keep + b"/mod" in d.paths(Mask.MODIFY, after)
        assert keep + b"/mod" in d.paths(Mask.CLOSE_WRITE, after)
        assert keep + b"/same" not in d.paths(Mask.ALL, after)
        moves = {(e.path, e.src_path) for e in after if e.mask & Mask.MOVED_TO}
        assert (keep + b"/ren2", keep + b"/ren") in moves
        assert keep + b"/gone" in d.paths(Mask.DELETE, after)
        d.check_views()
