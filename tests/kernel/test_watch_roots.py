"""H19 and root handling: roots renamed or deleted, rearm, start errors, reload, prune hook."""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
from pathlib import Path

import pytest
from watchkit import Driver, touch

from fswatchd._inotify.fd import InotifyFd
from fswatchd.errors import WatchError, WatchLimitError
from fswatchd.events import Mask
from fswatchd.watch import RecursiveWatcher, Root

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def tree(tmp_path: Path) -> bytes:
    path = tmp_path / "tree"
    (path / "x").mkdir(parents=True)
    return bytes(path)


async def test_h19_root_renamed_is_reported_and_iteration_ends(tree: bytes) -> None:
    """1. mv tree tree_renamed; touch tree_renamed/x/new.
    2. One MOVE_SELF|ISDIR event with the root path; nothing under the new name or as
       tree/x/new; no root left and rearm=False: the iteration ends."""
    async with Driver([tree]) as d:
        os.rename(tree, tree + b"_renamed")
        touch(tree + b"_renamed/x/new")
        while await d.next_batch() is not None:
            pass
        assert [(e.path, e.mask, e.root) for e in d.events] == [
            (tree, Mask.MOVE_SELF | Mask.ISDIR, tree)
        ]
        assert d.watcher.roots_alive == 0
        assert d.watcher.snapshot() == {}


async def test_h19_root_deleted_is_reported(tree: bytes) -> None:
    """rm -rf tree: DELETEs for its content, then DELETE_SELF|ISDIR for the root; end."""
    async with Driver([tree]) as d:
        shutil.rmtree(tree)
        while await d.next_batch() is not None:
            pass
        assert d.events[-1].path == tree
        assert d.events[-1].mask == Mask.DELETE_SELF | Mask.ISDIR
        assert tree + b"/x" in d.paths(Mask.DELETE)


async def test_h19_other_roots_keep_working(tmp_path: Path) -> None:
    """Two roots; one is deleted; the other keeps reporting."""
    t1, t2 = bytes(tmp_path / "t1"), bytes(tmp_path / "t2")
    os.mkdir(t1)
    os.mkdir(t2)
    async with Driver([t2, t1]) as d:
        os.rmdir(t1)
        await d.until(lambda e: e.path == t1 and bool(e.mask & Mask.DELETE_SELF))
        assert d.watcher.roots_alive == 1
        touch(t2 + b"/f")
        events = await d.barrier()
        assert d.paths(Mask.CREATE, events) == [t2 + b"/f"]


async def test_rearm_root_deleted_then_recreated(tmp_path: Path) -> None:
    """rearm=True: the root is deleted, its parent too, then both come back with content:
    the content is reported (synthetic) and later events are seen."""
    parent = bytes(tmp_path / "p")
    root = parent + b"/root"
    os.makedirs(root)
    async with Driver([root], rearm=True) as d:
        shutil.rmtree(parent)
        await d.until(lambda e: e.path == root and bool(e.mask & Mask.DELETE_SELF))
        os.makedirs(root + b"/sub")
        touch(root + b"/sub/f")
        await d.until(lambda e: e.path == root + b"/sub/f" and bool(e.mask & Mask.CREATE))
        assert d.watcher.roots_alive == 1
        touch(root + b"/g")
        events = await d.barrier()
        assert d.paths(Mask.CREATE, events) == [root + b"/g"]
        d.check_views()


async def test_rearm_root_missing_at_start(tmp_path: Path) -> None:
    """rearm=True: a root that does not exist yet is a warning; it is watched on mkdir."""
    root = bytes(tmp_path / "later")
    async with Driver([root], rearm=True) as d:
        assert d.watcher.roots_alive == 0
        os.mkdir(root)
        touch(root + b"/f")
        await d.until(lambda e: e.path == root + b"/f" and bool(e.mask & Mask.CREATE))
        assert d.watcher.roots_alive == 1


async def test_missing_root_is_an_error_without_rearm(tmp_path: Path) -> None:
    """rearm=False: start() raises WatchError with errno and filename; no fd leaks."""
    watcher = RecursiveWatcher([Root(bytes(tmp_path / "nope"))], Mask.ALL)
    with pytest.raises(WatchError) as info:
        await watcher.start()
    assert info.value.errno == errno.ENOENT
    assert info.value.filename == str(tmp_path / "nope")
    watcher.close()


async def test_set_roots_adds_and_drops(tmp_path: Path) -> None:
    """set_roots: a new root's content is reported; a dropped root reports nothing more."""
    t1, t2 = bytes(tmp_path / "t1"), bytes(tmp_path / "t2")
    os.mkdir(t1)
    os.makedirs(t2 + b"/d")
    touch(t2 + b"/d/f")
    async with Driver([t1]) as d:
        await d.watcher.set_roots([Root(t2)])
        d.roots = [Root(t2)]
        touch(t1 + b"/ignored")
        events = await d.barrier()
        assert t2 + b"/d/f" in d.paths(Mask.CREATE, events)
        assert d.paths(Mask.ALL, events).count(t1 + b"/ignored") == 0
        assert d.watcher.watch_count == 2


async def test_non_recursive_root(tree: bytes) -> None:
    """recursive=False: entries of the root are reported, nothing below them."""
    async with Driver([Root(tree, recursive=False)]) as d:
        assert d.watcher.watch_count == 1
        touch(tree + b"/x/deep")
        os.mkdir(tree + b"/y")
        touch(tree + b"/y/deep")
        events = await d.barrier()
        assert d.paths(Mask.ALL, events) == [tree + b"/y"]


async def test_should_watch_prunes(tree: bytes) -> None:
    """should_watch False: the directory is in the view but not watched nor descended."""
    os.makedirs(tree + b"/node_modules/pkg")
    seen: list[bytes] = []

    def should_watch(path: bytes) -> bool:
        seen.append(path)
        return not path.endswith(b"/node_modules")

    async with Driver([tree], should_watch=should_watch) as d:
        assert d.watcher.watch_count == 2
        touch(tree + b"/node_modules/pkg/f")
        touch(tree + b"/x/f")
        events = await d.barrier()
        assert d.paths(Mask.CREATE, events) == [tree + b"/x/f"]
        assert tree + b"/node_modules" in seen
        assert d.watcher.snapshot()[tree + b"/node_modules"] is True


async def test_mask_filters_but_tree_stays_right(tree: bytes) -> None:
    """Mask CLOSE_WRITE only: renames are not reported, yet paths after them are right."""
    async with Driver([tree], mask=Mask.CLOSE_WRITE) as d:
        os.rename(tree + b"/x", tree + b"/y")
        touch(tree + b"/y/f")
        os.mkdir(tree + b"/z")  # CREATE not reported, but z is watched and scanned
        touch(tree + b"/z/g")
        events = await d.barrier()
        assert sorted(d.paths(Mask.ALL, events)) == [tree + b"/y/f", tree + b"/z/g"]
        assert all(e.mask == Mask.CLOSE_WRITE for e in events)


class FullFd(InotifyFd):
    """A real fd whose add_watch always fails with ENOSPC (a seam for the watch limit)."""

    def add_watch(self, path: bytes, mask: int) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)


async def test_root_watch_limit_is_a_watch_limit_error(tree: bytes) -> None:
    """ENOSPC on a root at start: WatchLimitError (an OSError) naming the sysctl."""
    watcher = RecursiveWatcher([Root(tree)], Mask.ALL, fd_factory=FullFd)
    with pytest.raises(WatchLimitError) as info:
        await watcher.start()
    assert info.value.errno == errno.ENOSPC
    assert isinstance(info.value, OSError)
    assert "fs.inotify.max_user_watches" in str(info.value)
    watcher.close()


async def test_set_roots_with_a_new_mask_reaches_existing_watches(tree: bytes) -> None:
    """1. Watch with CREATE|DELETE only: a chmod in tree/x reports nothing.
    2. set_roots(same roots, mask | ATTRIB): the same watches (same count) now report
       ATTRIB for tree/x/f; no watch was added or lost."""
    touch(tree + b"/x/f")
    async with Driver([tree], Mask.CREATE | Mask.DELETE) as d:
        os.chmod(tree + b"/x/f", 0o600)
        events = await d.barrier()
        assert not [e for e in events if e.mask & Mask.ATTRIB]
        watches = d.watcher.watch_count
        await d.watcher.set_roots([Root(tree)], Mask.CREATE | Mask.DELETE | Mask.ATTRIB)
        assert d.watcher.watch_count == watches
        os.chmod(tree + b"/x/f", 0o644)
        events = await d.until(lambda e: bool(e.mask & Mask.ATTRIB))
        assert events[-1].path == tree + b"/x/f"


async def test_has_input_sees_the_kernel_queue(tree: bytes) -> None:
    """The watchdog probe: idle -> False; an event queued in the kernel -> True; after
    the watcher read and processed it -> False again. (Reads are left out of the mask: the
    watcher's own scan would queue OPEN/CLOSE_NOWRITE on the directories.)"""
    quiet = Mask.ALL & ~(Mask.OPEN | Mask.ACCESS | Mask.CLOSE_NOWRITE)
    async with Driver([tree], quiet) as d:
        assert not d.watcher.has_input()
        touch(tree + b"/x/new")
        assert d.watcher.has_input()
        await d.barrier()
        assert not d.watcher.has_input()


async def test_set_roots_wakes_a_waiting_consumer(tmp_path: Path) -> None:
    """1. A consumer waits for events while nothing happens on disk.
    2. set_roots() adds a root whose file already exists.
    3. The consumer gets the synthetic CREATE for it without any further kernel event."""
    one, two = bytes(tmp_path / "one"), bytes(tmp_path / "two")
    os.mkdir(one)
    os.mkdir(two)
    touch(two + b"/old")
    async with Driver([one]) as d:
        waiting = asyncio.ensure_future(d.until(lambda e: e.path == two + b"/old"))
        await asyncio.sleep(0)  # let the consumer reach its wait on the fd
        await d.watcher.set_roots([Root(one), Root(two)])
        async with asyncio.timeout(5):
            events = await waiting
        assert events[-1].synthetic


async def test_root_ancestor_renamed_is_the_root_moved(tmp_path: Path) -> None:
    """1. Root p/tree. 2. mv p q (no event on the root itself), touch q/tree/f.
    3. MOVE_SELF|ISDIR for p/tree, nothing under p/ afterwards; no root left: the end."""
    base = bytes(tmp_path)
    root = base + b"/p/tree"
    os.makedirs(root)
    async with Driver([root]) as d:
        os.rename(base + b"/p", base + b"/q")
        touch(base + b"/q/tree/f")
        while await d.next_batch() is not None:
            pass
        assert [(e.path, e.mask) for e in d.events] == [(root, Mask.MOVE_SELF | Mask.ISDIR)]
        assert d.watcher.roots_alive == 0


async def test_root_ancestor_renamed_and_back_keeps_the_root(tmp_path: Path) -> None:
    """mv p q; mv q p before the watcher reads: the root's path leads to it again, so it
    stays, and a later file is reported; a sibling of an ancestor renamed changes
    nothing."""
    base = bytes(tmp_path)
    root = base + b"/p/tree"
    os.makedirs(root)
    os.mkdir(base + b"/sibling")
    async with Driver([root]) as d:
        os.rename(base + b"/p", base + b"/q")
        os.rename(base + b"/q", base + b"/p")
        os.rename(base + b"/sibling", base + b"/sibling2")
        touch(root + b"/f")
        events = await d.barrier()
        assert d.paths(Mask.ALL, events) == [root + b"/f"] * 3  # CREATE, OPEN, CLOSE_WRITE
        assert d.watcher.roots_alive == 1
        os.rename(base + b"/p", base + b"/q")  # the guard is in place again
        await d.until(lambda e: e.path == root and bool(e.mask & Mask.MOVE_SELF))


async def test_rearm_root_ancestor_renamed_then_path_made_again(tmp_path: Path) -> None:
    """rearm=True: mv p q reports the root moved; mkdir -p p/tree brings it back, and a
    file there is reported under p/tree; the old tree (now q/tree) is not watched."""
    base = bytes(tmp_path)
    root = base + b"/p/tree"
    os.makedirs(root)
    async with Driver([root], rearm=True) as d:
        os.rename(base + b"/p", base + b"/q")
        await d.until(lambda e: e.path == root and bool(e.mask & Mask.MOVE_SELF))
        os.makedirs(root)
        touch(root + b"/f")
        await d.until(lambda e: e.path == root + b"/f" and bool(e.mask & Mask.CREATE))
        touch(base + b"/q/tree/old")
        events = await d.barrier()
        assert [e.path for e in events if e.path and b"/q/" in e.path] == []
        assert d.watcher.roots_alive == 1
