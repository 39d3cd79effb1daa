"""Adversarial real-kernel scenarios for the walk records, the hot loop and the repair.

The initial walk records files from readdir alone (inode and kind), the overflow repair
judges those records by ctime and pairs renames by inode, leaf directories share one empty
``dirs`` mapping, the engine shares its per-file state between consecutive events and the
parser splits uniform reads column-wise. Each scenario changes a real tree while the
watcher is not reading ("frozen"), lets it read up to a barrier, and checks the reported
events and that the replayed stream, ``snapshot()`` and the disk agree.

Tests marked ``xfail(strict=True)`` pin a defect: they pass once it is fixed (and must
then lose the mark).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Sequence
from pathlib import Path

import pytest
from watchkit import (
    Driver,
    after_overflow,
    flood,
    hostile,
    let_ctime_age,
    renameat2_exchange,
    touch,
)

from fswatchd._inotify.fd import InotifyFd
from fswatchd._inotify.parse import _uniform_size, parse_events
from fswatchd.events import Mask, RawEvent

pytestmark = pytest.mark.timeout(60)

NOBODY = 65534
HERE = os.path.dirname(os.path.abspath(__file__))


# -- RENAME_EXCHANGE of a file and a directory ------------------------------------------


@pytest.mark.parametrize("first", ["file", "dir"])
async def test_rename_exchange_of_a_file_and_a_directory(tree: bytes, first: str) -> None:
    """1. f (file) and d/sub/x exist at start (walk records).
    2. Frozen: renameat2(f, d, RENAME_EXCHANGE) (or (d, f)).
    3. The views agree: f is the directory with sub/x, d the file; a file created in
       f/sub later is reported there."""
    touch(tree + b"/f", b"f")
    os.makedirs(tree + b"/d/sub")
    touch(tree + b"/d/sub/x")
    async with Driver([tree]) as d:
        if first == "file":
            renameat2_exchange(tree + b"/f", tree + b"/d")
        else:
            renameat2_exchange(tree + b"/d", tree + b"/f")
        await d.barrier()
        d.check_views()
        touch(tree + b"/f/sub/later")
        assert tree + b"/f/sub/later" in d.paths(Mask.CREATE, await d.barrier())


# -- the overflow repair and walk records -----------------------------------------------


@pytest.mark.slow
async def test_renamed_and_rewritten_walk_file_is_reported_written(tree: bytes) -> None:
    """1. a exists well before the start (walk record).
    2. Frozen: overflow; mv a x; rewrite x with another size; put x's mtime back (as
       ``cp -p``, ``rsync -t`` or ``tar`` do).
    3. x's new content is reported (CLOSE_WRITE for x), as it is for a file whose record
       was lstat-ed (inode, size and mtime must all match to pair)."""
    touch(tree + b"/a", b"1")
    os.mkdir(tree + b"/flood")
    old = os.lstat(tree + b"/a")
    let_ctime_age()
    async with Driver([tree]) as d:
        flood(tree + b"/flood")
        os.rename(tree + b"/a", tree + b"/x")
        touch(tree + b"/x", b"a different size")
        os.utime(tree + b"/x", ns=(old.st_atime_ns, old.st_mtime_ns))
        after = after_overflow(await d.barrier())
        d.check_views()
        assert tree + b"/x" in d.paths(Mask.CLOSE_WRITE, after)


@pytest.mark.slow
@pytest.mark.parametrize("record", ["walk", "lstat"])
@pytest.mark.parametrize("change", ["both-deleted", "one-renamed-one-deleted"])
async def test_hard_links_gone_during_an_overflow(tmp_path: Path, record: str, change: str) -> None:
    """1. s/a and s/b are two names of one inode; recorded by the walk (readdir) or by
       the scan of s moved in after the start (lstat).
    2. Frozen: overflow; rm s/a s/b (or mv s/a s/c; rm s/b).
    3. The views equal the disk: no stale name is left."""
    tree, staged = bytes(tmp_path / "tree"), bytes(tmp_path / "staged")
    os.makedirs(tree + b"/flood")
    os.makedirs(staged)
    touch(staged + b"/a", b"data")
    os.link(staged + b"/a", staged + b"/b")
    if record == "walk":
        os.rename(staged, tree + b"/s")
    let_ctime_age()
    async with Driver([tree]) as d:
        if record == "lstat":
            os.rename(staged, tree + b"/s")
            await d.barrier()
        flood(tree + b"/flood")
        if change == "both-deleted":
            os.unlink(tree + b"/s/a")
        else:
            os.rename(tree + b"/s/a", tree + b"/s/c")
        os.unlink(tree + b"/s/b")
        after_overflow(await d.barrier())
        d.check_views()


@pytest.mark.slow
async def test_hard_link_left_behind_is_reported_changed(tree: bytes) -> None:
    """1. keep and keep2 are one inode (walk records).
    2. Frozen: overflow; rm keep2.
    3. DELETE keep2; keep is reported MODIFY (its ctime moved with the link count: a
       duplicate, never a miss); the views agree."""
    os.mkdir(tree + b"/flood")
    touch(tree + b"/keep", b"k")
    os.link(tree + b"/keep", tree + b"/keep2")
    let_ctime_age()
    async with Driver([tree]) as d:
        flood(tree + b"/flood")
        os.unlink(tree + b"/keep2")
        after = after_overflow(await d.barrier())
        assert d.paths(Mask.DELETE, after).count(tree + b"/keep2") == 1
        assert tree + b"/keep" in d.paths(Mask.MODIFY, after)
        d.check_views()


@pytest.mark.slow
async def test_kinds_replaced_during_an_overflow(tree: bytes) -> None:
    """1. f (file), g/in, h/ exist at start.
    2. Frozen: overflow; f becomes a directory with f/x; g becomes a file; h a symlink.
    3. The repair reports each replacement (DELETE then CREATE, with the right is_dir);
       the views agree; f is watched (a file created in it later is reported)."""
    touch(tree + b"/f", b"data")
    os.mkdir(tree + b"/g")
    touch(tree + b"/g/in")
    os.mkdir(tree + b"/h")
    os.mkdir(tree + b"/flood")
    let_ctime_age()
    async with Driver([tree]) as d:
        flood(tree + b"/flood")
        os.unlink(tree + b"/f")
        os.mkdir(tree + b"/f")
        touch(tree + b"/f/x")
        os.unlink(tree + b"/g/in")
        os.rmdir(tree + b"/g")
        touch(tree + b"/g", b"file now")
        os.rmdir(tree + b"/h")
        os.symlink(b"g", tree + b"/h")
        after = after_overflow(await d.barrier())
        created = {e.path: e.is_dir for e in after if e.mask & Mask.CREATE}
        assert created[tree + b"/f"] is True
        assert created[tree + b"/g"] is False
        assert created[tree + b"/h"] is False
        assert tree + b"/f/x" in created
        d.check_views()
        touch(tree + b"/f/later")
        assert tree + b"/f/later" in d.paths(Mask.CREATE, await d.barrier())


async def test_kinds_replaced_before_the_watcher_reads(tree: bytes) -> None:
    """Frozen after start: f (file) -> directory with f/x; g/ -> file. Views agree, f/x
    is reported (synthetic), and f is watched."""
    touch(tree + b"/f", b"data")
    os.mkdir(tree + b"/g")
    touch(tree + b"/g/in")
    async with Driver([tree]) as d:
        os.unlink(tree + b"/f")
        os.mkdir(tree + b"/f")
        touch(tree + b"/f/x")
        os.unlink(tree + b"/g/in")
        os.rmdir(tree + b"/g")
        touch(tree + b"/g", b"file now")
        events = await d.barrier()
        assert tree + b"/f/x" in d.paths(Mask.CREATE, events)
        d.check_views()
        touch(tree + b"/f/later")
        assert tree + b"/f/later" in d.paths(Mask.CREATE, await d.barrier())


@pytest.mark.slow
async def test_symlinks_and_fifos_during_an_overflow(tree: bytes) -> None:
    """1. l1 (dangling symlink), l2 -> l1, fifos p1 and p2 at start (walk records).
    2. Frozen: overflow; mv l1 l1b; mv p1 p1b; chmod p2.
    3. Two MOVED_TO with src_path, ATTRIB (not MODIFY/CLOSE_WRITE) for the fifo p2,
       nothing for l2; the views agree. (A renamed walk-record entry may be reported
       changed too: the rename set its ctime; only ATTRIB for non-regular files.)"""
    os.symlink(b"/nonexistent", tree + b"/l1")
    os.symlink(b"l1", tree + b"/l2")
    os.mkfifo(tree + b"/p1")
    os.mkfifo(tree + b"/p2")
    os.mkdir(tree + b"/flood")
    let_ctime_age()
    async with Driver([tree]) as d:
        flood(tree + b"/flood")
        os.rename(tree + b"/l1", tree + b"/l1b")
        os.rename(tree + b"/p1", tree + b"/p1b")
        os.chmod(tree + b"/p2", 0o600)
        after = [
            e for e in after_overflow(await d.barrier()) if b"/flood" not in (e.path or b"/flood")
        ]
        assert sorted((e.path, e.src_path) for e in after if e.mask & Mask.MOVED_TO) == [
            (tree + b"/l1b", tree + b"/l1"),
            (tree + b"/p1b", tree + b"/p1"),
        ]
        others = [(e.path, e.mask) for e in after if not e.mask & Mask.MOVED_TO]
        assert [o for o in others if o[0] not in (tree + b"/l1b", tree + b"/p1b")] == [
            (tree + b"/p2", Mask.ATTRIB)
        ]
        assert {mask for _, mask in others} == {Mask.ATTRIB}
        d.check_views()


@pytest.mark.slow
async def test_overflow_on_a_large_tree_with_dirty_records(tmp_path: Path) -> None:
    """1. 1,000 directories d<i>/e<j> with files a and b each (walk records).
    2. Some records are made dirty by events (d<i>/e0/a rewritten), read to a barrier.
    3. Frozen: overflow; rename directories, move files across directories, delete,
       rewrite, rename a dirty file.
    4. The repair reports exactly those changes (nothing for the untouched files) and
       the views agree."""
    tree = bytes(tmp_path / "tree")
    os.makedirs(tree + b"/flood")
    for i in range(20):
        for j in range(50):
            path = tree + b"/d%d/e%d" % (i, j)
            os.makedirs(path)
            touch(path + b"/a", b"a")
            touch(path + b"/b", b"bb")
    let_ctime_age()
    async with Driver([tree]) as d:
        for i in range(5):
            touch(tree + b"/d%d/e0/a" % i, b"dirty")
        await d.barrier()
        flood(tree + b"/flood")
        for i in range(5):
            os.rename(tree + b"/d%d/e1" % i, tree + b"/d%d/e1x" % (i + 10))
            os.rename(tree + b"/d%d/e2/a" % i, tree + b"/d%d/e3/moved" % (i + 1))
            os.unlink(tree + b"/d%d/e4/b" % i)
            touch(tree + b"/d%d/e5/a" % i, b"changed")
            os.rename(tree + b"/d%d/e0/a" % i, tree + b"/d%d/e0/a2" % i)
        after = [e for e in after_overflow(await d.barrier()) if e.path and b"/flood" not in e.path]
        moves = {(e.path, e.src_path) for e in after if e.mask & Mask.MOVED_TO}
        for i in range(5):
            assert (tree + b"/d%d/e1x" % (i + 10), tree + b"/d%d/e1" % i) in moves
            assert (tree + b"/d%d/e3/moved" % (i + 1), tree + b"/d%d/e2/a" % i) in moves
            assert tree + b"/d%d/e4/b" % i in d.paths(Mask.DELETE, after)
            assert tree + b"/d%d/e5/a" % i in d.paths(Mask.CLOSE_WRITE, after)
            assert tree + b"/d%d/e0/a2" % i in d.paths(Mask.CREATE | Mask.MOVED_TO, after)
        touched = (b"/e0/", b"/e1", b"/e2/", b"/e3/", b"/e4/", b"/e5/")
        assert [e.path for e in after if not any(t in (e.path or b"") for t in touched)] == []
        d.check_views()


async def test_rename_onto_a_name_holding_the_displaced_inode_is_no_exchange(
    tree: bytes,
) -> None:
    """1. f exists, with a second name keep (one inode).
    2. Frozen: atomic save of f (write tmp, mv tmp f: f's old inode lives on as keep);
       mv f g; mv keep g.
    3. The views equal the disk (f is gone)."""
    touch(tree + b"/f", b"old")
    os.link(tree + b"/f", tree + b"/keep")
    async with Driver([tree]) as d:
        touch(tree + b"/tmp", b"new")
        os.rename(tree + b"/tmp", tree + b"/f")
        os.rename(tree + b"/f", tree + b"/g")
        os.rename(tree + b"/keep", tree + b"/g")
        await d.barrier()
        d.check_views()


async def test_two_atomic_saves_with_a_rename_between(tree: bytes) -> None:
    """1. f exists. 2. Frozen: save f through tmp; mv f g; save g through tmp2 (which
    gets f's freed inode number on ext4). 3. The views equal the disk (f is gone)."""
    touch(tree + b"/f", b"old")
    old_ino = os.lstat(tree + b"/f").st_ino
    async with Driver([tree]) as d:
        touch(tree + b"/tmp", b"new")
        os.rename(tree + b"/tmp", tree + b"/f")
        os.rename(tree + b"/f", tree + b"/g")
        touch(tree + b"/tmp2", b"newer")
        os.rename(tree + b"/tmp2", tree + b"/g")
        if os.lstat(tree + b"/g").st_ino != old_ino:
            pytest.skip("this file system did not reuse the inode number")
        await d.barrier()
        d.check_views()


# -- roots ------------------------------------------------------------------------------


async def test_leaf_root_grows_subdirectories(tree: bytes) -> None:
    """A root without subdirectories (the shared empty 'dirs') gets a/b/c/f, renamed
    twice; the views agree and later events carry the new paths."""
    async with Driver([tree]) as d:
        os.makedirs(tree + b"/a/b/c")
        touch(tree + b"/a/b/c/f")
        os.rename(tree + b"/a", tree + b"/z")
        await d.barrier()
        d.check_views()
        os.mkdir(tree + b"/y")
        os.rename(tree + b"/z/b", tree + b"/y/b")
        touch(tree + b"/y/b/c/g")
        events = await d.barrier()
        assert tree + b"/y/b/c/g" in d.paths(Mask.CREATE, events)
        d.check_views()


async def test_root_parent_renamed(tmp_path: Path) -> None:
    """1. Root p/tree. 2. mv p q; touch q/tree/f. 3. No event carries a path below p/tree;
    the root itself is reported moved (MOVE_SELF|ISDIR)."""
    base = bytes(tmp_path)
    os.makedirs(base + b"/p/tree")
    async with Driver([base + b"/p/tree"]) as d:
        os.rename(base + b"/p", base + b"/q")
        touch(base + b"/q/tree/f")
        events = await d.until(lambda e: e.path is not None and e.path.endswith(b"/f"))
        assert [e.path for e in events if e.path and e.path.startswith(base + b"/p/tree/")] == []
        assert (base + b"/p/tree", Mask.MOVE_SELF | Mask.ISDIR) in [
            (e.path, e.mask) for e in events
        ]


# -- hostile names through the parser and the hot loop -----------------------------------


@pytest.mark.parametrize(
    "lengths",
    [range(1, 16), range(16, 32), [255] * 40, [15, 16, 31, 32, 47, 48, 254, 255], range(1, 64)],
    ids=["one-size-32", "one-size-48", "255", "boundaries", "mixed"],
)
async def test_hostile_names_keep_their_bytes(tree: bytes, lengths: Sequence[int]) -> None:
    """Frozen: create each name, then rename each onto a name as long as the next one.
    CREATE, CLOSE_WRITE and MOVED_TO (path, src_path) come in order, byte-exact."""
    names = [hostile(n, k) for k, n in enumerate(lengths)]
    targets = [b"R" + names[(k + 1) % len(names)][1:] for k in range(len(names))]
    async with Driver([tree]) as d:
        for name in names:
            touch(tree + b"/" + name, b"x")
        for name, target in zip(names, targets, strict=True):
            os.rename(tree + b"/" + name, tree + b"/" + target)
        events = await d.barrier()
        assert d.paths(Mask.CREATE, events) == [tree + b"/" + n for n in names]
        assert d.paths(Mask.CLOSE_WRITE, events) == [tree + b"/" + n for n in names]
        assert [(e.path, e.src_path) for e in events if e.mask & Mask.MOVED_TO] == [
            (tree + b"/" + t, tree + b"/" + n) for n, t in zip(names, targets, strict=True)
        ]
        d.check_views()


@pytest.mark.parametrize("length", [15, 16, 255])
def test_a_real_read_of_one_record_size_takes_the_uniform_path(tree: bytes, length: int) -> None:
    """The kernel pads names to 16 bytes: one read of same-length names is uniform and
    parses to the exact names (wd, mask, cookie as the general path gives them)."""
    names = [hostile(length, k) for k in range(30)]
    with InotifyFd() as fd:
        wd = fd.add_watch(tree, int(Mask.CREATE | Mask.MOVED_FROM | Mask.MOVED_TO))
        for name in names:
            touch(tree + b"/" + name)
        os.rename(tree + b"/" + names[0], tree + b"/" + names[0][::-1])
        data = fd.read()
    assert _uniform_size(data) == 16 + (length // 16 + 1) * 16
    events = parse_events(data)
    assert events[:-2] == [RawEvent(wd, int(Mask.CREATE), 0, n) for n in names]
    assert [e.name for e in events[-2:]] == [names[0], names[0][::-1]]
    assert events[-2].cookie == events[-1].cookie != 0


# -- directories the watching user can read but not search -------------------------------

CHILD = textwrap.dedent(
    r"""
    import asyncio, os, sys
    from watchkit import Driver, renameat2_exchange
    from fswatchd.events import Mask

    def touch(path):
        with open(path, "wb"):
            pass

    async def new_dir(tree):
        async with Driver([tree]) as d:
            os.mkdir(tree + b"/D")
            touch(tree + b"/D/f")
            os.chmod(tree + b"/D", 0o644)
            await d.barrier()
            os.chmod(tree + b"/D", 0o755)
            await d.barrier()
            d.check_views()

    async def dir_at_start(tree):
        os.makedirs(tree + b"/D/sub")
        touch(tree + b"/D/sub/f")
        os.chmod(tree + b"/D", 0o644)
        async with Driver([tree]) as d:
            os.chmod(tree + b"/D", 0o755)
            await d.barrier()
            touch(tree + b"/D/sub/later")
            await d.barrier()
            assert tree + b"/D/sub/later" in d.paths(Mask.CREATE)
            d.check_views()

    asyncio.run({"new_dir": new_dir, "dir_at_start": dir_at_start}[sys.argv[2]](
        os.fsencode(sys.argv[1])))
    """
)


def run_as_nobody(scenario: str) -> subprocess.CompletedProcess[str]:
    """Run CHILD's ``scenario`` as uid/gid 65534 on a tree it owns (see test_watch_perms)."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv(1) to run the watcher as another user")
    base = tempfile.mkdtemp(prefix="fswatchd-adv-")
    try:
        os.chmod(base, 0o755)
        lib = os.path.join(base, "lib")
        shutil.copytree(os.path.join(HERE, "..", "..", "fswatchd"), os.path.join(lib, "fswatchd"))
        shutil.copy(os.path.join(HERE, "watchkit.py"), lib)
        tree = os.path.join(base, "tree")
        os.mkdir(tree)
        os.chown(tree, NOBODY, NOBODY)
        argv = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
        argv += [os.path.realpath(sys.executable), "-s", "-c", CHILD, tree, scenario]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": lib}
        return subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=40, check=False
        )
    finally:
        for top, dirs, _ in os.walk(base):  # as root: give back what the scenario locked
            for name in dirs:
                os.chmod(os.path.join(top, name), 0o755)
        shutil.rmtree(base)


@pytest.mark.root
@pytest.mark.parametrize("scenario", ["new_dir", "dir_at_start"])
def test_unsearchable_directory_made_searchable(scenario: str) -> None:
    """As nobody. new_dir: frozen mkdir D; touch D/f; chmod 644 D; then chmod 755 D:
    D/f is in the views. dir_at_start: D (0644) holds sub/f at start; chmod 755 D; a file
    created in D/sub is reported and the views agree."""
    proc = run_as_nobody(scenario)
    assert proc.returncode == 0, proc.stderr[-2000:]
