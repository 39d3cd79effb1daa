"""Races against the real kernel that the recursive watcher must survive.

Each test does its file system actions while the watcher is not reading ("frozen"), then
lets it read up to a barrier and checks that the view replayed from the event stream, the
watcher's snapshot() and the disk agree (docs/watcher.md, "The view").
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from watchkit import Driver, renameat2_exchange, touch

from fswatchd.events import Mask

pytestmark = pytest.mark.timeout(60)


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


@pytest.fixture
def outside(tmp_path: Path) -> bytes:
    path = tmp_path / "outside"
    path.mkdir()
    return bytes(path)


async def test_created_then_renamed_directory_is_one_paired_rename(tree: bytes) -> None:
    """1. Frozen: mkdir a; touch a/f; mv a b.
    2. CREATE a, then MOVED_TO b with src_path a and the kernel's cookie; b's content is
       reported (synthetic) and a file created in b later is reported."""
    async with Driver([tree]) as d:
        os.mkdir(tree + b"/a")
        touch(tree + b"/a/f")
        os.rename(tree + b"/a", tree + b"/b")
        events = await d.barrier()
        moves = [e for e in events if e.mask & Mask.MOVED_TO]
        assert [(e.path, e.src_path, e.synthetic) for e in moves] == [
            (tree + b"/b", tree + b"/a", False)
        ]
        assert moves[0].cookie != 0
        assert tree + b"/b/f" in d.paths(Mask.CREATE, events)
        d.check_views()
        touch(tree + b"/b/later")
        assert tree + b"/b/later" in d.paths(Mask.CREATE, await d.barrier())


async def test_new_tree_whose_parent_is_renamed_twice_before_it_is_watched(tree: bytes) -> None:
    """1. p is watched. Frozen: mkdir -p p/x/y; touch p/x/y/f; mv p q; mv q r.
    2. The content is reported under r; later files in r/x/y are reported."""
    os.mkdir(tree + b"/p")
    async with Driver([tree]) as d:
        os.makedirs(tree + b"/p/x/y")
        touch(tree + b"/p/x/y/f")
        os.rename(tree + b"/p", tree + b"/q")
        os.rename(tree + b"/q", tree + b"/r")
        events = await d.barrier()
        assert tree + b"/r/x/y/f" in d.paths(Mask.CREATE, events)
        d.check_views()
        touch(tree + b"/r/x/y/later")
        assert tree + b"/r/x/y/later" in d.paths(Mask.CREATE, await d.barrier())


async def test_directory_moved_into_a_just_renamed_directory(tree: bytes, outside: bytes) -> None:
    """1. p is watched. Frozen: mv outside/d p/d; mv p q.
    2. d's content is reported under q/d; later files in q/d are reported."""
    os.mkdir(tree + b"/p")
    os.mkdir(outside + b"/d")
    touch(outside + b"/d/f")
    async with Driver([tree]) as d:
        os.rename(outside + b"/d", tree + b"/p/d")
        os.rename(tree + b"/p", tree + b"/q")
        events = await d.barrier()
        assert tree + b"/q/d/f" in d.paths(Mask.CREATE, events)
        d.check_views()
        touch(tree + b"/q/d/later")
        assert tree + b"/q/d/later" in d.paths(Mask.CREATE, await d.barrier())


async def test_rename_events_carry_the_kernel_cookie(tree: bytes, outside: bytes) -> None:
    """A paired rename's MOVED_TO, a move in and a move out carry the kernel's cookie
    (non-zero, different per rename); every other event, synthetic ones included, 0."""
    touch(outside + b"/in")
    async with Driver([tree]) as d:
        touch(tree + b"/f")
        os.rename(tree + b"/f", tree + b"/g")
        os.rename(outside + b"/in", tree + b"/in")
        os.rename(tree + b"/g", outside + b"/g")
        os.makedirs(tree + b"/n/sub")
        events = await d.barrier()
        moves = {e.path: e for e in events if e.mask & (Mask.MOVED_FROM | Mask.MOVED_TO)}
        assert set(moves) == {tree + b"/g", tree + b"/in"}
        assert moves[tree + b"/g"].mask & Mask.MOVED_FROM  # the move out, reported last
        pairs = [e for e in events if e.mask & Mask.MOVED_TO and e.src_path == tree + b"/f"]
        assert len(pairs) == 1
        cookies = [pairs[0].cookie, moves[tree + b"/in"].cookie, moves[tree + b"/g"].cookie]
        assert 0 not in cookies and len(set(cookies)) == 3
        others = [e for e in events if not e.mask & (Mask.MOVED_FROM | Mask.MOVED_TO)]
        assert any(e.synthetic for e in others)  # n/sub: found by the scan of n
        assert {e.cookie for e in others} == {0}
        d.check_views()


@pytest.mark.parametrize("depth", [b"", b"/p"], ids=["root", "nested"])
async def test_name_reused_after_a_rename_before_it_is_watched(tree: bytes, depth: bytes) -> None:
    """1. Frozen: mkdir a; mv a b; mkdir a (the name is reused before the watcher reads;
       in a subdirectory p made in the same burst too). Each gets a file inside.
    2. The views agree: both a and b are there, each with its own file, and a file made
       later in either is reported under the right name."""
    base = tree + depth
    async with Driver([tree]) as d:
        if depth:
            os.mkdir(base)
        os.mkdir(base + b"/a")
        open(base + b"/a/first", "wb").close()
        os.rename(base + b"/a", base + b"/b")
        os.mkdir(base + b"/a")
        open(base + b"/a/second", "wb").close()
        await d.barrier()
        d.check_views()
        for name in (b"a", b"b"):
            open(base + b"/" + name + b"/later", "wb").close()
        events = await d.barrier()
        created = d.paths(Mask.CREATE, events)
        assert base + b"/a/later" in created and base + b"/b/later" in created
        d.check_views()


async def test_files_made_then_exchanged_before_they_are_stat_ed(tree: bytes) -> None:
    """1. touch a, d (read, but never idle: their records hold no inode yet).
    2. Frozen: renameat2(a, d, RENAME_EXCHANGE); then a directory and a file exchanged
       and the directory renamed on (mv x y).
    3. Both names of each exchange stay in the views."""
    async with Driver([tree]) as d:
        open(tree + b"/a", "wb").close()
        open(tree + b"/d", "wb").close()
        os.mkdir(tree + b"/x")
        open(tree + b"/x/in", "wb").close()
        open(tree + b"/f", "wb").close()
        await d.barrier()
        renameat2_exchange(tree + b"/a", tree + b"/d")
        renameat2_exchange(tree + b"/x", tree + b"/f")
        os.rename(tree + b"/f", tree + b"/y")
        await d.barrier()
        d.check_views()
        assert d.watcher.snapshot()[tree + b"/y/in"] is False
