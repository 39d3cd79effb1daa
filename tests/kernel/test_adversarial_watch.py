"""Races against the real kernel that the recursive watcher must survive.

Each test does its file system actions while the watcher is not reading ("frozen"), then
lets it read up to a barrier and checks that the view replayed from the event stream, the
watcher's snapshot() and the disk agree (docs/watcher.md, "The view").
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from watchkit import Driver

from fswatchd.events import Mask

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def tree(tmp_path: Path) -> bytes:
    path = tmp_path / "tree"
    path.mkdir()
    return bytes(path)


@pytest.mark.xfail(
    strict=True,
    reason="a directory created and renamed before its watch is placed is reported as "
    "CREATE a, then MOVED_TO b without src_path: add_watch(a) fails (ENOENT), the pair's "
    "source is unknown, so nothing ever removes a from a consumer's view",
)
async def test_directory_created_then_renamed_before_it_is_watched(tree: bytes) -> None:
    """1. Frozen: mkdir a; mv a b (an atomic "publish a directory" as tools do).
    2. The stream reports b, and a consumer replaying it holds the same view as the disk:
       either no CREATE for a, or a later event that takes a away (MOVED_TO b with
       src_path a, MOVED_FROM or DELETE a).
    """
    async with Driver([tree]) as d:
        os.mkdir(tree + b"/a")
        os.rename(tree + b"/a", tree + b"/b")
        await d.barrier()
        assert tree + b"/b" in d.paths(Mask.CREATE | Mask.MOVED_TO)
        d.check_views()


@pytest.mark.xfail(
    strict=True,
    reason="a directory created inside a directory that is renamed before the watcher "
    "reads the CREATE is never watched: add_watch on the old path fails with ENOENT and is "
    "ignored as if the directory were gone, so nothing inside it is ever reported",
)
async def test_new_directory_whose_parent_is_renamed_before_it_is_watched(tree: bytes) -> None:
    """1. p is watched. Frozen: mkdir p/x; mv p q.
    2. The views agree (q/x is in the snapshot), and a file created later in q/x is
       reported.
    """
    os.mkdir(tree + b"/p")
    async with Driver([tree]) as d:
        os.mkdir(tree + b"/p/x")
        os.rename(tree + b"/p", tree + b"/q")
        await d.barrier()
        d.check_views()
        with open(tree + b"/q/x/later", "wb"):
            pass
        await d.barrier()
        assert tree + b"/q/x/later" in d.paths(Mask.CREATE)
