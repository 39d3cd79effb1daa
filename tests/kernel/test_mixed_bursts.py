"""Bursts of renames and exchanges of files over the same names, read late.

A RENAME_EXCHANGE queues two rename pairs, the second the first reversed; a rename(2) of
``a`` onto ``b`` followed by one of ``b`` onto ``a`` queues the same. The engine tells them
apart by what the names hold when it reads the second pair, and later changes queued
behind it (a removal, another exchange, a rename over one of the names) can make that
answer wrong. Such a pair marks its directories, which are listed again once the watcher
has caught up, and their file records reconciled with the disk (synthetic events for the
difference). Each history here left the view, or the replayed stream, wrong before that.

Every scenario runs frozen (the watcher reads nothing until the barrier), then the
replayed stream, ``snapshot()`` and the disk must agree.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator

import pytest
from watchkit import Driver, renameat2_exchange, touch

from fswatchd._inotify.fd import InotifyFd
from fswatchd._inotify.parse import parse_events
from fswatchd.events import FsEvent, Mask

pytestmark = pytest.mark.timeout(60)

#: name -> (initial kinds, the frozen history): "f" a file, "d" an empty directory, "D"
#: a directory holding a file. The diff each left before the reconcile is in the comment.
HISTORIES: dict[str, tuple[dict[str, str], Callable[[bytes], None]]] = {
    # view lacked a: the reversed pair was judged by c, already removed
    "exchange-then-remove": (
        {"a": "f", "c": "f"},
        lambda t: (renameat2_exchange(t + b"/c", t + b"/a"), os.unlink(t + b"/c")),
    ),
    # view lacked a: the second exchange's inodes belied the first one's
    "exchange-twice": (
        {"a": "f", "c": "f"},
        lambda t: (
            renameat2_exchange(t + b"/a", t + b"/c"),
            renameat2_exchange(t + b"/c", t + b"/a"),
        ),
    ),
    # view lacked c: a rename over b replaced what the reversed pair was judged by
    "exchange-then-rename-over": (
        {"a": "f", "b": "f", "c": "f"},
        lambda t: (renameat2_exchange(t + b"/b", t + b"/c"), os.rename(t + b"/a", t + b"/b")),
    ),
    # view kept b: the second rename's source was not in the view, taken as a file
    "exchange-then-renames-back-and-forth": (
        {"a": "d", "b": "f", "c": "f"},
        lambda t: (
            renameat2_exchange(t + b"/b", t + b"/c"),
            os.rename(t + b"/c", t + b"/b"),
            os.rename(t + b"/b", t + b"/c"),
        ),
    ),
    # stream lost b: rewriting b (no CREATE) once the view had silently lost it
    "exchanges-then-rewrite": (
        {"a": "f", "b": "f", "c": "f"},
        lambda t: (
            renameat2_exchange(t + b"/a", t + b"/b"),
            renameat2_exchange(t + b"/c", t + b"/a"),
            touch(t + b"/b", b"new"),
        ),
    ),
    # stream lost the directory c: a file's MOVED_TO carried src_path c, a directory
    "exchange-remove-exchange-with-a-directory": (
        {"a": "d", "b": "f", "c": "f"},
        lambda t: (
            renameat2_exchange(t + b"/b", t + b"/c"),
            os.unlink(t + b"/b"),
            renameat2_exchange(t + b"/a", t + b"/c"),
        ),
    ),
    # view lacked the directory x: the reversed pair of a file and a directory was taken
    # for an exchange's second half, while the names were reused behind it
    "directory-exchanged-twice-then-removed": (
        {"x": "f", "c": "D"},
        lambda t: (
            os.mkdir(t + b"/a"),
            renameat2_exchange(t + b"/c", t + b"/a"),
            renameat2_exchange(t + b"/c", t + b"/x"),
            shutil.rmtree(t + b"/a"),
        ),
    ),
    # stream lost p/a: a file put back by a supposed exchange onto a name where the view
    # holds a directory (its CREATE read late), which the next pair then moved away
    "file-exchanged-with-a-directory-made-at-its-old-name": (
        {"p": "d", "q": "d", "p/a": "f"},
        lambda t: (
            touch(t + b"/q/a"),
            os.rename(t + b"/p/a", t + b"/q/a"),
            os.mkdir(t + b"/p/a"),
            renameat2_exchange(t + b"/q/a", t + b"/p/a"),
        ),
    ),
    # across two directories: view lacked q/a
    "exchange-twice-across-directories": (
        {"p": "d", "q": "d", "q/a": "f", "q/b": "f", "q/c": "f"},
        lambda t: (
            renameat2_exchange(t + b"/q/c", t + b"/q/a"),
            renameat2_exchange(t + b"/q/c", t + b"/q/b"),
        ),
    ),
}


def _lay_out(t: bytes, kinds: dict[str, str]) -> None:
    for name, kind in kinds.items():
        path = t + b"/" + name.encode()
        if kind == "f":
            touch(path, b"x")
        else:
            os.mkdir(path)
            if kind == "D":
                touch(path + b"/in")


@pytest.mark.parametrize("name", sorted(HISTORIES))
async def test_history_read_late_leaves_the_views_equal(tree: bytes, name: str) -> None:
    kinds, history = HISTORIES[name]
    _lay_out(tree, kinds)
    async with Driver([tree]) as d:
        history(tree)
        await d.barrier()
        d.check_views()
        assert d.watcher._engine is not None
        assert not d.watcher._engine.placer.unsure  # checked, and emptied


async def test_repair_is_synthetic_create_and_close_write(tree: bytes) -> None:
    """exchange c a; rm c: the file left at a is reported by the repair, once."""
    _lay_out(tree, {"a": "f", "c": "f"})
    async with Driver([tree]) as d:
        renameat2_exchange(tree + b"/c", tree + b"/a")
        os.unlink(tree + b"/c")
        events = await d.barrier()
        d.check_views()
    at_a = [(e.mask, e.synthetic) for e in events if e.path == tree + b"/a"]
    assert at_a[-2:] == [(Mask.CREATE, True), (Mask.CLOSE_WRITE, True)], at_a


class DirReads:
    """Counts opens of directories below ``tree`` by anyone (IN_OPEN|IN_ISDIR on a second
    inotify instance of the test's own): the watcher lists a directory with opendir(3), so
    each listing it makes is one of them. Read it before ``check_views``, which walks."""

    def __init__(self, tree: bytes) -> None:
        self._fd = InotifyFd()
        self._fd.add_watch(tree, int(Mask.OPEN | Mask.ONLYDIR))

    def take(self) -> list[bytes]:
        """The names of the directories opened since the last call (b"" for ``tree``)."""
        names: list[bytes] = []
        while True:
            try:
                data = self._fd.read()
            except BlockingIOError:
                return names
            names += [e.name for e in parse_events(data) if e.mask & Mask.ISDIR]

    def close(self) -> None:
        self._fd.close()


@pytest.fixture
def dir_reads(tree: bytes) -> Iterator[DirReads]:
    """A DirReads on ``tree``; start it (``take()``) once the watcher's walk is done."""
    reads = DirReads(tree)
    yield reads
    reads.close()


async def test_renames_that_leave_no_doubt_list_nothing(tree: bytes, dir_reads: DirReads) -> None:
    """Atomic saves, renames onward and moves of directories: no directory is listed."""
    _lay_out(tree, {"f": "f", "g": "f", "d": "D"})
    async with Driver([tree]) as d:
        dir_reads.take()  # the walk's
        for i in range(20):
            touch(tree + b"/.tmp%d" % i, b"v%d" % i)
            os.rename(tree + b"/.tmp%d" % i, tree + b"/f")
        os.rename(tree + b"/f", tree + b"/h")
        os.rename(tree + b"/h", tree + b"/g")
        os.rename(tree + b"/d", tree + b"/e")
        touch(tree + b"/e/more")
        await d.barrier()
        assert dir_reads.take() == []
        d.check_views()


async def test_an_exchange_lists_its_directory_once_and_reports_nothing_more(
    tree: bytes, dir_reads: DirReads
) -> None:
    """A plain exchange judged right: one listing, and only the exchange's own events."""
    _lay_out(tree, {"a": "f", "b": "f"})
    async with Driver([tree]) as d:
        dir_reads.take()  # the walk's
        renameat2_exchange(tree + b"/a", tree + b"/b")
        events = await d.barrier()
        assert dir_reads.take() == [b""]
        d.check_views()
    moved: list[FsEvent] = [e for e in events if e.mask & Mask.MOVED_TO]
    assert [(e.path, e.src_path) for e in moved] == [(tree + b"/b", tree + b"/a")]
    assert [(e.path, e.mask) for e in events if e.synthetic] == [
        (tree + b"/a", Mask.CREATE),
        (tree + b"/a", Mask.CLOSE_WRITE),
    ]
