"""H10: a queue overflow forced by volume (sysctls untouched), then the repair.

While the watcher is not reading, more events than ``fs.inotify.max_queued_events`` are
caused, followed by changes whose events are certainly lost: deletes, a new directory,
a modified file, a renamed file and a renamed directory (``mv a b``). After the
IN_Q_OVERFLOW event the view must equal the disk, the difference must have been reported
precisely, and ``touch b/x/new`` must be reported under ``b``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from watchkit import Driver, flood, touch

from fswatchd.events import Mask
from fswatchd.message_ids import MESSAGE_ID_OVERFLOW_REPAIRED

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]


async def test_h10_overflow_by_volume_is_repaired(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """1. Pre-existing: a/x, keep/p0..p19, keep/mod, keep/ren.
    2. Frozen: enough creates to overflow, then rm p*, mkdir new/ (+file), write mod,
       mv keep/ren keep/ren2, mv a b.
    3. Q_OVERFLOW is reported; the repair reports MOVED_TO b (src a), MOVED_TO ren2
       (src ren), MODIFY+CLOSE_WRITE mod, DELETE p*, CREATE new/...; views agree.
    4. touch b/x/new is reported as b/x/new."""
    tree = bytes(tmp_path / "tree")
    os.makedirs(tree + b"/a/x")
    os.makedirs(tree + b"/keep")
    for i in range(20):
        touch(tree + b"/keep/p%d" % i)
    touch(tree + b"/keep/mod", b"1")
    touch(tree + b"/keep/ren", b"r")
    caplog.set_level(logging.WARNING)
    os.mkdir(tree + b"/flood")
    async with Driver([tree]) as d:
        flood(tree + b"/flood")  # CREATE, OPEN, CLOSE_WRITE each: > the limit
        for i in range(20):
            os.unlink(tree + b"/keep/p%d" % i)
        os.makedirs(tree + b"/new/sub")
        touch(tree + b"/new/sub/nf")
        touch(tree + b"/keep/mod", b"changed size")
        os.rename(tree + b"/keep/ren", tree + b"/keep/ren2")
        os.rename(tree + b"/a", tree + b"/b")
        events = await d.barrier()
        at = [k for k, e in enumerate(events) if e.mask & Mask.Q_OVERFLOW]
        assert len(at) == 1
        assert events[at[0]].path is None
        after = events[at[0] :]
        moves = {(e.path, e.src_path) for e in after if e.mask & Mask.MOVED_TO}
        assert (tree + b"/b", tree + b"/a") in moves
        assert (tree + b"/keep/ren2", tree + b"/keep/ren") in moves
        assert tree + b"/keep/mod" in d.paths(Mask.CLOSE_WRITE, after)
        assert tree + b"/keep/mod" in d.paths(Mask.MODIFY, after)
        assert tree + b"/keep/p7" in d.paths(Mask.DELETE, after)
        assert tree + b"/new/sub/nf" in d.paths(Mask.CREATE, after)
        assert all(e.synthetic for e in after if e.path is not None)
        d.check_views()
        touch(tree + b"/b/x/new")
        events = await d.barrier()
        assert d.paths(Mask.CREATE, events) == [tree + b"/b/x/new"]
        d.check_views()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("IN_Q_OVERFLOW" in w and "1 moved" not in w for w in warnings), warnings
    [repair] = [r for r in caplog.records if "IN_Q_OVERFLOW" in r.getMessage()]
    assert repair.journal == {"MESSAGE_ID": MESSAGE_ID_OVERFLOW_REPAIRED}  # type: ignore[attr-defined]
