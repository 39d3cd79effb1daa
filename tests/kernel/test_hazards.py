"""One real-kernel scenario per inotify hazard (docs: inotify-hazards H01-H23).

Each test performs its file system actions while the watcher is not reading ("frozen"),
then lets it read up to a barrier, and checks the reported events and that three views
agree: the view replayed from the event stream, ``watcher.snapshot()`` and the disk.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest
from watchkit import Driver, renameat2_exchange, touch

from fswatchd._inotify.fd import InotifyFd
from fswatchd.events import Mask

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def outside(tmp_path: Path) -> bytes:
    path = tmp_path / "outside"
    path.mkdir()
    return bytes(path)


def under(prefix: bytes, paths: list[bytes | None]) -> list[bytes]:
    return [p for p in paths if p is not None and (p == prefix or p.startswith(prefix + b"/"))]


async def test_h01_new_dir_populated_before_its_watch(tree: bytes) -> None:
    """1. mkdir -p a/b/c && write a/b/c/f while the watcher is not reading.
    2. The content is reported (synthetic CREATE, and CLOSE_WRITE for the file)."""
    async with Driver([tree]) as d:
        os.makedirs(tree + b"/a/b/c")
        touch(tree + b"/a/b/c/f", b"data")
        await d.barrier()
        assert tree + b"/a/b/c/f" in d.paths(Mask.CREATE)
        assert tree + b"/a/b/c/f" in d.paths(Mask.CLOSE_WRITE)
        assert d.watcher.watch_count == 4
        d.check_views()


async def test_h02_dir_renamed_then_used(tree: bytes) -> None:
    """1. a/x exists. 2. mv a b; touch b/x/new. 3. One MOVED_TO b (src a); new under b."""
    os.makedirs(tree + b"/a/x")
    async with Driver([tree]) as d:
        os.rename(tree + b"/a", tree + b"/b")
        touch(tree + b"/b/x/new")
        events = await d.barrier()
        moves = [(e.path, e.src_path, e.is_dir) for e in events if e.mask & Mask.MOVED_TO]
        assert moves == [(tree + b"/b", tree + b"/a", True)]
        assert tree + b"/b/x/new" in d.paths(Mask.CREATE)
        assert under(tree + b"/a", d.paths(Mask.ALL)) == []
        d.check_views()


async def test_h03_nested_renames(tree: bytes) -> None:
    """mv a A; mv A/b A/B; mv A/B/c A/B/C; touch A/B/C/new -> reported at its real path."""
    os.makedirs(tree + b"/a/b/c")
    async with Driver([tree]) as d:
        os.rename(tree + b"/a", tree + b"/A")
        os.rename(tree + b"/A/b", tree + b"/A/B")
        os.rename(tree + b"/A/B/c", tree + b"/A/B/C")
        touch(tree + b"/A/B/C/new")
        await d.barrier()
        assert d.paths(Mask.CREATE) == [tree + b"/A/B/C/new"]
        d.check_views()


async def test_h03_deep_rename_twice(tree: bytes) -> None:
    """A 9-level tree renamed twice; a file created at the bottom has the final path."""
    deep = b"/".join(b"a%d" % i for i in range(2, 10))
    os.makedirs(tree + b"/a1/" + deep)
    async with Driver([tree]) as d:
        os.rename(tree + b"/a1", tree + b"/b1")
        os.rename(tree + b"/b1", tree + b"/c1")
        touch(tree + b"/c1/" + deep + b"/n2")
        await d.barrier()
        assert d.paths(Mask.CREATE) == [tree + b"/c1/" + deep + b"/n2"]
        d.check_views()


async def test_h04_dir_moved_out(tree: bytes, outside: bytes) -> None:
    """1. mv tree/om outside/om: one MOVED_FROM (no src). 2. Activity there is not seen."""
    os.makedirs(tree + b"/om/sub")
    async with Driver([tree]) as d:
        os.rename(tree + b"/om", outside + b"/om")
        events = await d.barrier()
        assert [(e.path, e.src_path) for e in events if e.mask & Mask.MOVED_FROM] == [
            (tree + b"/om", None)
        ]
        touch(outside + b"/om/sub/new")
        os.mkdir(outside + b"/om/sub2")
        after = await d.barrier()
        assert after == []
        assert d.watcher.watch_count == 1
        d.check_views()


async def test_h04_move_out_and_back(tree: bytes, outside: bytes) -> None:
    """Moved out, changed outside, moved back under a new name: the view has the new content."""
    os.makedirs(tree + b"/om/sub")
    async with Driver([tree]) as d:
        os.rename(tree + b"/om", outside + b"/om")
        await d.barrier()
        touch(outside + b"/om/sub/x")
        os.rename(outside + b"/om", tree + b"/back")
        await d.barrier()
        assert tree + b"/back/sub/x" in d.paths(Mask.CREATE)
        assert under(tree + b"/om", d.paths(Mask.CREATE)) == []
        d.check_views()


async def test_h05_dir_moved_in(tree: bytes, outside: bytes) -> None:
    """A populated tree moved in, and used right away, is reported entirely."""
    os.makedirs(outside + b"/in/sub")
    touch(outside + b"/in/g", b"g")
    touch(outside + b"/in/sub/f")
    async with Driver([tree]) as d:
        os.rename(outside + b"/in", tree + b"/in")
        touch(tree + b"/in/sub/new")
        await d.barrier()
        created = d.paths(Mask.CREATE)
        for p in (b"/in/g", b"/in/sub", b"/in/sub/f", b"/in/sub/new"):
            assert tree + p in created
        assert tree + b"/in/g" in d.paths(Mask.CLOSE_WRITE)
        d.check_views()


async def test_h06_rename_across_two_roots(tmp_path: Path) -> None:
    """One fd, one tree: a move between roots is one MOVED_TO; later events once, right."""
    t1, t2 = bytes(tmp_path / "t1"), bytes(tmp_path / "t2")
    os.makedirs(t1 + b"/d/x")
    os.mkdir(t2)
    async with Driver([t1, t2]) as d:
        os.rename(t1 + b"/d", t2 + b"/d")
        touch(t2 + b"/d/x/new")
        events = await d.barrier()
        assert [(e.path, e.src_path, e.root) for e in events if e.mask & Mask.MOVED_TO] == [
            (t2 + b"/d", t1 + b"/d", t2)
        ]
        assert d.paths(Mask.CREATE, events) == [t2 + b"/d/x/new"]
        d.check_views()


async def test_h07_rename_burst(tree: bytes) -> None:
    """150 directory renames, each followed by a create inside, while frozen."""
    for i in range(150):
        os.mkdir(tree + b"/d%d" % i)
    async with Driver([tree]) as d:
        for i in range(150):
            os.rename(tree + b"/d%d" % i, tree + b"/e%d" % i)
            touch(tree + b"/e%d/f" % i)
        await d.barrier()
        assert sorted(d.paths(Mask.CREATE)) == sorted(tree + b"/e%d/f" % i for i in range(150))
        d.check_views()


async def test_h08_delete_recreate(tree: bytes) -> None:
    """rm -r del; mkdir del; touch del/f2 at once: del/f2 is reported."""
    os.makedirs(tree + b"/del")
    touch(tree + b"/del/f1")
    async with Driver([tree]) as d:
        shutil.rmtree(tree + b"/del")
        os.mkdir(tree + b"/del")
        touch(tree + b"/del/f2")
        await d.barrier()
        assert tree + b"/del/f2" in d.paths(Mask.CREATE)
        d.check_views()


async def test_h09_rm_rf_large_subtree(tree: bytes) -> None:
    """rm -rf of 40 dirs x 25 files: every DELETE reported, every watch freed."""
    for i in range(40):
        os.makedirs(tree + b"/big/d%d" % i)
        for j in range(25):
            touch(tree + b"/big/d%d/f%d" % (i, j))
    async with Driver([tree]) as d:
        assert d.watcher.watch_count == 42
        shutil.rmtree(tree + b"/big")
        await d.barrier()
        assert len(d.paths(Mask.DELETE)) == 40 * 25 + 40 + 1
        assert d.watcher.watch_count == 1
        d.check_views()


@pytest.mark.parametrize(
    "name", [b"caf\xe9", b"\xff\xfe", b"a\nb", b"$(touch PWNED)", b"%e%w ;|&", b"-rf"]
)
async def test_h12_h13_hostile_names(tree: bytes, name: bytes) -> None:
    """Non-UTF-8 bytes, newlines and shell metacharacters pass byte-exact, dirs and files."""
    async with Driver([tree]) as d:
        os.mkdir(tree + b"/" + name)
        touch(tree + b"/" + name + b"/" + name)
        await d.barrier()
        assert tree + b"/" + name + b"/" + name in d.paths(Mask.CREATE)
        d.check_views()


async def test_h14_symlink_loop_and_link_outside(tree: bytes, outside: bytes) -> None:
    """Links are entries, never followed: no loop, nothing watched outside."""
    os.makedirs(tree + b"/sub")
    os.makedirs(outside + b"/target")
    os.symlink(b".", tree + b"/loop")
    os.symlink(b"..", tree + b"/sub/up")
    os.symlink(outside + b"/target", tree + b"/link")
    async with Driver([tree]) as d:
        assert d.watcher.watch_count == 2
        touch(outside + b"/target/x")
        os.symlink(outside + b"/target", tree + b"/sub/link2")
        events = await d.barrier()
        assert [(e.path, e.is_dir) for e in events if e.mask & Mask.CREATE] == [
            (tree + b"/sub/link2", False)
        ]
        assert d.watcher.snapshot()[tree + b"/link"] is False
        d.check_views()


async def test_h15_hard_links(tree: bytes, outside: bytes) -> None:
    """Writes are seen under the name used; a write via a link outside is not (documented)."""
    os.makedirs(tree + b"/sub")
    touch(tree + b"/sub/h1")
    os.link(tree + b"/sub/h1", tree + b"/sub/h2")
    os.link(tree + b"/sub/h1", outside + b"/h3")
    async with Driver([tree]) as d:
        touch(outside + b"/h3", b"via outside")
        touch(tree + b"/sub/h1", b"via h1")
        os.unlink(tree + b"/sub/h1")
        events = await d.barrier()
        assert d.paths(Mask.CLOSE_WRITE, events) == [tree + b"/sub/h1"]
        assert tree + b"/sub/h2" in d.watcher.snapshot()
        d.check_views()


async def test_h20_late_ignored_after_name_reuse(tree: bytes) -> None:
    """The old w's DELETE_SELF/IGNORED arrive after a new w exists: nothing is reported."""
    os.mkdir(tree + b"/w")
    async with Driver([tree]) as d:
        held = os.open(tree + b"/w", os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.rmdir(tree + b"/w")
            os.mkdir(tree + b"/w")
            touch(tree + b"/w/f")
            await d.barrier()
        finally:
            os.close(held)
        late = await d.barrier()
        assert late == []
        touch(tree + b"/w/g")
        events = await d.barrier()
        assert d.paths(Mask.CREATE, events) == [tree + b"/w/g"]
        d.check_views()


async def test_h21_rename_over_empty_dir(tree: bytes) -> None:
    """mv a b (b an empty dir): b's late DELETE_SELF is not reported; b/x/new is."""
    os.makedirs(tree + b"/a/x")
    os.mkdir(tree + b"/b")
    async with Driver([tree]) as d:
        os.rename(tree + b"/a", tree + b"/b")
        touch(tree + b"/b/x/new")
        events = await d.barrier()
        assert d.paths(Mask.DELETE | Mask.DELETE_SELF, events) == []
        assert d.paths(Mask.CREATE, events) == [tree + b"/b/x/new"]
        d.check_views()


async def test_h21_atomic_save(tree: bytes) -> None:
    """Write a temp file, rename it over the target: one MOVED_TO target (src the temp)."""
    touch(tree + b"/f", b"old")
    async with Driver([tree]) as d:
        touch(tree + b"/.f.tmp", b"new")
        os.rename(tree + b"/.f.tmp", tree + b"/f")
        events = await d.barrier()
        assert [(e.path, e.src_path) for e in events if e.mask & Mask.MOVED_TO] == [
            (tree + b"/f", tree + b"/.f.tmp")
        ]
        d.check_views()


@pytest.mark.parametrize("kind", ["dirs", "files"])
async def test_h22_rename_exchange(tree: bytes, kind: str) -> None:
    """renameat2(RENAME_EXCHANGE) of p and q: views agree; later events use new paths."""
    if kind == "dirs":
        os.makedirs(tree + b"/p/ps")
        os.makedirs(tree + b"/q/qs")
    else:
        touch(tree + b"/p", b"p")
        touch(tree + b"/q", b"qq")
    async with Driver([tree]) as d:
        renameat2_exchange(tree + b"/p", tree + b"/q")
        if kind == "dirs":
            touch(tree + b"/q/ps/n2")
        events = await d.barrier()
        if kind == "dirs":
            assert tree + b"/q/ps/n2" in d.paths(Mask.CREATE, events)
            assert under(tree + b"/p/ps", d.paths(Mask.ALL, events)) == []
        d.check_views()


async def test_h23_transient_dirs(tree: bytes) -> None:
    """Dirs gone (or replaced by a file) before the watcher gets to them: no error."""
    async with Driver([tree]) as d:
        for i in range(20):
            os.mkdir(tree + b"/t%d" % i)
            os.rmdir(tree + b"/t%d" % i)
        os.mkdir(tree + b"/t3")
        os.rmdir(tree + b"/t3")
        touch(tree + b"/t3")
        await d.barrier()
        assert d.paths(Mask.ERROR) == []
        d.check_views()


class LimitedFd(InotifyFd):
    """A real fd whose add_watch fails with ENOSPC for directories named "full" (a seam)."""

    def add_watch(self, path: bytes, mask: int) -> int:
        if path.endswith(b"/full"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        return super().add_watch(path, mask)


async def test_h11_enospc_on_a_subdirectory_is_reported(tree: bytes) -> None:
    """A subdirectory that hits the watch limit: ERROR event naming the sysctl; rest works."""
    os.makedirs(tree + b"/ok")
    async with Driver([tree], fd_factory=LimitedFd) as d:
        os.mkdir(tree + b"/full")
        touch(tree + b"/ok/f")
        events = await d.barrier()
        errors = [e for e in events if e.mask & Mask.ERROR]
        assert [(e.path, e.errno, e.is_dir) for e in errors] == [
            (tree + b"/full", errno.ENOSPC, True)
        ]
        assert errors[0].message is not None
        assert "fs.inotify.max_user_watches" in errors[0].message
        assert tree + b"/ok/f" in d.paths(Mask.CREATE, events)
