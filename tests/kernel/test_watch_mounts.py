"""H16 (bind mount: one inode reached by two paths) and H18 (unmount under a watched tree).

Both need mount(8) as root; they are skipped, with the reason, where mounting is refused.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from watchkit import Driver, touch

from fswatchd.events import Mask

pytestmark = [pytest.mark.root, pytest.mark.timeout(60)]


@contextmanager
def mounted(*args: bytes | str) -> Iterator[None]:
    """mount(8) with ``args`` (target last) for the block; skip the test if refused."""
    target = args[-1]
    done = subprocess.run(["mount", *args], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"mount not permitted here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", target], capture_output=True, check=False)


async def test_h16_bind_mount_keeps_the_first_path(tmp_path: Path) -> None:
    """1. tree/mnt is a bind mount of tree/src.
    2. Start: the walk meets the directory twice; which name comes first is the
       filesystem's readdir order. An ERROR event (EEXIST) names the second path and the
       message names the first.
    3. touch tree/src/via_src and tree/mnt/via_mnt: both reported under the first path
       only, never under both."""
    tree = bytes(tmp_path / "tree")
    os.makedirs(tree + b"/src")
    os.makedirs(tree + b"/mnt")
    with mounted("--bind", tree + b"/src", tree + b"/mnt"):
        async with Driver([tree]) as d:
            touch(tree + b"/src/via_src")
            touch(tree + b"/mnt/via_mnt")
            events = await d.barrier()
            errors = [e for e in events if e.mask & Mask.ERROR]
            assert [e.errno for e in errors] == [errno.EEXIST]
            second = errors[0].path
            assert second in (tree + b"/src", tree + b"/mnt")
            first = tree + b"/src" if second == tree + b"/mnt" else tree + b"/mnt"
            assert errors[0].message is not None and os.fsdecode(first) in errors[0].message
            assert d.paths(Mask.CREATE, events) == [first + b"/via_src", first + b"/via_mnt"]
            assert d.watcher.watch_count == 2


async def test_h18_unmount_drops_content_and_rewatches(tmp_path: Path) -> None:
    """1. tree/mp is a tmpfs with a file, watched. 2. umount tree/mp.
    3. DELETE for the tmpfs content; tree/mp (the covered dir) is watched again:
       touch tree/mp/after is reported; the views agree."""
    tree = bytes(tmp_path / "tree")
    os.makedirs(tree + b"/mp")
    touch(tree + b"/mp/covered")
    with mounted("-t", "tmpfs", "tmpfs", tree + b"/mp"):
        os.mkdir(tree + b"/mp/d")
        touch(tree + b"/mp/d/inside")
        async with Driver([tree]) as d:
            subprocess.run(["umount", tree + b"/mp"], check=True)
            events = await d.barrier()
            assert tree + b"/mp/d/inside" in d.paths(Mask.DELETE, events)
            assert tree + b"/mp/covered" in d.paths(Mask.CREATE, events)
            touch(tree + b"/mp/after")
            events = await d.barrier()
            assert d.paths(Mask.CREATE, events) == [tree + b"/mp/after"]
            d.check_views()


async def test_h18_root_unmounted_is_reported_and_rewatched(tmp_path: Path) -> None:
    """1. The root itself is a tmpfs. 2. umount: UNMOUNT|ISDIR for the root, then the
    directory underneath is the root: its content is reported and watched."""
    root = bytes(tmp_path / "root")
    os.makedirs(root)
    touch(root + b"/covered")
    with mounted("-t", "tmpfs", "tmpfs", root):
        touch(root + b"/on_tmpfs")
        async with Driver([root]) as d:
            subprocess.run(["umount", root], check=True)
            await d.until(lambda e: e.path == root + b"/covered")
            assert (root, Mask.UNMOUNT | Mask.ISDIR) in [(e.path, e.mask) for e in d.events]
            touch(root + b"/after")
            events = await d.barrier()
            assert d.paths(Mask.CREATE, events) == [root + b"/after"]
            d.check_views()
