"""The initial walk must not flood the kernel queue with its own directory reads.

Reading a watched directory queues OPEN, ACCESS and CLOSE_NOWRITE on its watch and on its
parent's when those masks include them; a walk of more directories than
``max_queued_events / 6`` would then overflow the queue and force a full rescan right after
start. The walk places its watches without those events and adds them afterwards.
"""

from __future__ import annotations

import os

import pytest
from watchkit import Driver

from fswatchd._inotify.limits import queued_events_limit
from fswatchd.events import Mask

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]


async def test_initial_walk_with_read_events_does_not_overflow(tmp_path: object) -> None:
    """1. A tree with more directories than the queue holds 6 events for.
    2. Watch it for ALL events (OPEN, ACCESS, CLOSE_NOWRITE included).
    3. No Q_OVERFLOW is reported; an OPEN of a file deep in the tree still is."""
    tree = os.fsencode(tmp_path) + b"/tree"
    dirs = (queued_events_limit() or 16384) // 6 + 200
    for i in range(dirs):
        os.makedirs(tree + b"/g%d/d%d" % (i % 50, i))
    async with Driver([tree], mask=int(Mask.ALL)) as d:
        deep = tree + b"/g7/d7/f"
        with open(deep, "wb"):
            pass
        events = await d.barrier()
        assert d.paths(Mask.Q_OVERFLOW) == []
        assert deep in d.paths(Mask.OPEN, events)
        d.check_views()
