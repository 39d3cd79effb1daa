"""The watcher's raw-event handling driven by scripted RawEvent sequences (no kernel).

``ScriptFd`` stands in for the inotify fd: it answers add_watch from a table the test
controls (path -> inode -> wd, as the kernel would) and records rm_watch calls, raising
EINVAL for a wd that is not a watch any more, like the kernel. The roots do not exist
on disk, so the watcher's scans find nothing: every change comes from the script.
"""

from __future__ import annotations

import errno
import itertools
import os

import pytest

from fswatchd.events import FsEvent, Mask, RawEvent, mask_names
from fswatchd.message_ids import MESSAGE_ID_WATCH_LIMIT
from fswatchd.watch.engine import Engine

R = b"/nonexistent-fswatchd-root"
ISDIR = int(Mask.ISDIR)
TIMEOUT = 0.03


class ScriptFd:
    """A fake inotify fd: ``inodes`` maps a path to an inode; one wd per inode."""

    def __init__(self) -> None:
        self.inodes: dict[bytes, int] = {}
        self.wd_of: dict[int, int] = {}
        self.removed: list[int] = []
        self.full: set[bytes] = set()  # paths whose add_watch fails with ENOSPC
        self._next_ino = itertools.count(1000)
        self._next_wd = itertools.count(1)

    def mkdir(self, path: bytes) -> None:
        self.inodes[path] = next(self._next_ino)

    def rename(self, src: bytes, dst: bytes) -> None:
        for path in [p for p in self.inodes if p == src or p.startswith(src + b"/")]:
            self.inodes[dst + path[len(src) :]] = self.inodes.pop(path)

    def add_watch(self, path: bytes, mask: int) -> int:
        if path in self.full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        ino = self.inodes.get(path)
        if ino is None:
            raise OSError(errno.ENOENT, os.strerror(errno.ENOENT), path)
        if ino not in self.wd_of:
            self.wd_of[ino] = next(self._next_wd)
        return self.wd_of[ino]

    def rm_watch(self, wd: int) -> None:
        if wd not in self.wd_of.values():
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        self.removed.append(wd)
        self.wd_of = {i: w for i, w in self.wd_of.items() if w != wd}


class Script:
    """An Engine on a ScriptFd, with a fake clock."""

    def __init__(self) -> None:
        self.fd = ScriptFd()
        self.fd.mkdir(R)
        self.now = 0.0
        self.engine = Engine(
            self.fd,  # type: ignore[arg-type]
            int(Mask.ALL),
            move_timeout=TIMEOUT,
            should_watch=None,
            drain=list,
        )
        assert self.engine.roots.add(R, True, emit=False, strict=True)

    def wd(self, rel: bytes) -> int:
        return self.fd.wd_of[self.fd.inodes[R + rel]]

    def feed(self, *events: RawEvent, dt: float = 0.0) -> list[tuple[str, bytes, bytes | None]]:
        self.now += dt
        return short(self.engine.feed(list(events), self.now))

    def mkdir(self, rel: bytes) -> list[tuple[str, bytes, bytes | None]]:
        parent, name = os.path.split(rel)
        self.fd.mkdir(R + rel)
        return self.feed(ev(self.wd(parent.rstrip(b"/")), Mask.CREATE | ISDIR, name))


def ev(wd: int, mask: int, name: bytes = b"", cookie: int = 0) -> RawEvent:
    return RawEvent(wd, int(mask), cookie, name)


def short(events: list[FsEvent]) -> list[tuple[str, bytes, bytes | None]]:
    """(mask names, path relative to R, src relative to R) per event."""

    def rel(p: bytes | None) -> bytes | None:
        return None if p is None else p[len(R) :]

    return [("|".join(mask_names(e.mask)), rel(e.path) or b"", rel(e.src_path)) for e in events]


@pytest.fixture
def s() -> Script:
    script = Script()
    assert script.wd(b"") == 1
    return script


def test_new_dir_is_watched_and_later_events_use_its_path(s: Script) -> None:
    assert s.mkdir(b"/a") == [("CREATE|ISDIR", b"/a", None)]
    assert s.feed(ev(s.wd(b"/a"), Mask.CREATE, b"f")) == [("CREATE", b"/a/f", None)]
    assert s.engine.tree.snapshot() == {R + b"/a": True, R + b"/a/f": False}


def test_rename_split_across_batches_with_an_event_between(s: Script) -> None:
    """FROM in one batch, an unrelated event and the TO in the next: one MOVED_TO."""
    s.mkdir(b"/a")
    s.mkdir(b"/a/x")
    x = s.wd(b"/a/x")
    assert s.feed(ev(1, Mask.MOVED_FROM | ISDIR, b"a", cookie=5)) == []
    s.fd.rename(R + b"/a", R + b"/b")
    got = s.feed(
        ev(1, Mask.CREATE, b"other"),
        ev(1, Mask.MOVED_TO | ISDIR, b"b", cookie=5),
        ev(x, Mask.CREATE, b"new"),
    )
    assert got == [
        ("MOVED_TO|ISDIR", b"/b", b"/a"),
        ("CREATE", b"/other", None),
        ("CREATE", b"/b/x/new", None),
    ]
    assert s.fd.removed == []


def test_late_delete_self_for_a_replaced_name(s: Script) -> None:
    """H20: old w deleted and re-created; the old wd's DELETE_SELF/IGNORED come late and
    are not reported; the new w keeps working."""
    s.mkdir(b"/w")
    old = s.wd(b"/w")
    assert s.feed(ev(1, Mask.DELETE | ISDIR, b"w")) == [("DELETE|ISDIR", b"/w", None)]
    s.fd.inodes.pop(R + b"/w")
    s.mkdir(b"/w")
    new = s.wd(b"/w")
    assert new != old
    assert s.feed(ev(old, Mask.DELETE_SELF), ev(old, Mask.IGNORED)) == []
    assert old not in s.engine.tree.wds
    assert s.feed(ev(new, Mask.CREATE, b"f")) == [("CREATE", b"/w/f", None)]


def test_move_out_removes_watches_once_and_drops_later_events(s: Script) -> None:
    s.mkdir(b"/om")
    s.mkdir(b"/om/sub")
    om, sub = s.wd(b"/om"), s.wd(b"/om/sub")
    assert s.feed(ev(1, Mask.MOVED_FROM | ISDIR, b"om", cookie=9)) == []
    assert s.feed(dt=TIMEOUT) == [("MOVED_FROM|ISDIR", b"/om", None)]
    assert sorted(s.fd.removed) == sorted([om, sub])
    assert s.feed(ev(sub, Mask.CREATE, b"new"), ev(om, Mask.IGNORED), ev(sub, Mask.IGNORED)) == []
    assert om not in s.engine.tree.wds and sub not in s.engine.tree.wds
    assert s.engine.tree.snapshot() == {}


def test_move_in_without_from(s: Script) -> None:
    s.fd.mkdir(R + b"/in")
    assert s.feed(ev(1, Mask.MOVED_TO | ISDIR, b"in", cookie=4)) == [
        ("MOVED_TO|ISDIR", b"/in", None)
    ]
    assert s.feed(ev(s.wd(b"/in"), Mask.CREATE, b"f")) == [("CREATE", b"/in/f", None)]


def test_rename_exchange_of_directories(s: Script) -> None:
    """H22: p <-> q; the kernel (add_watch) says the second pair moved the displaced q."""
    s.mkdir(b"/p")
    s.mkdir(b"/q")
    s.mkdir(b"/p/ps")
    p, q, ps = s.wd(b"/p"), s.wd(b"/q"), s.wd(b"/p/ps")
    ip, iq = s.fd.inodes[R + b"/p"], s.fd.inodes[R + b"/q"]
    s.fd.inodes[R + b"/p"], s.fd.inodes[R + b"/q"] = iq, ip
    got = s.feed(
        ev(1, Mask.MOVED_FROM | ISDIR, b"p", cookie=1),
        ev(1, Mask.MOVED_TO | ISDIR, b"q", cookie=1),
        ev(p, Mask.MOVE_SELF),
        ev(1, Mask.MOVED_FROM | ISDIR, b"q", cookie=2),
        ev(1, Mask.MOVED_TO | ISDIR, b"p", cookie=2),
        ev(q, Mask.MOVE_SELF),
        ev(ps, Mask.CREATE, b"n2"),
    )
    assert got == [
        ("MOVED_TO|ISDIR", b"/q", b"/p"),
        ("CREATE|ISDIR", b"/p", None),
        ("CREATE", b"/q/ps/n2", None),
    ]
    tree = s.engine.tree
    assert tree.path(tree.wds[q]) == R + b"/p"
    assert tree.path(tree.wds[ps]) == R + b"/q/ps"


def test_rename_over_an_empty_dir_then_its_late_delete_self(s: Script) -> None:
    """H21: mv a b (b empty): b's late DELETE_SELF/IGNORED resolve to the detached node."""
    s.mkdir(b"/a")
    s.mkdir(b"/b")
    a, b = s.wd(b"/a"), s.wd(b"/b")
    got = s.feed(
        ev(1, Mask.MOVED_FROM | ISDIR, b"a", cookie=3),
        ev(1, Mask.MOVED_TO | ISDIR, b"b", cookie=3),
        ev(a, Mask.MOVE_SELF),
        ev(b, Mask.DELETE_SELF),
        ev(b, Mask.IGNORED),
        ev(a, Mask.CREATE, b"f"),
    )
    assert got == [("MOVED_TO|ISDIR", b"/b", b"/a"), ("CREATE", b"/b/f", None)]
    assert b not in s.engine.tree.wds


def test_root_move_self_is_reported_and_drops_the_tree(s: Script) -> None:
    s.mkdir(b"/x")
    x = s.wd(b"/x")
    assert s.feed(ev(1, Mask.MOVE_SELF), ev(x, Mask.CREATE, b"new")) == [
        ("MOVE_SELF|ISDIR", b"", None)
    ]
    assert s.engine.roots.alive == 0
    assert s.engine.roots.gone_roots == [R]


def test_enospc_dir_is_reported_then_retried(s: Script, caplog: pytest.LogCaptureFixture) -> None:
    """H11: a new directory hits the watch limit: ERROR event (errno, sysctl named) and a
    WARNING with the "watch limit hit" MESSAGE_ID; the directory stays in the view
    unwatched; a later retry watches it."""
    s.fd.full.add(R + b"/big")
    s.fd.mkdir(R + b"/big")
    got = s.engine.feed([ev(1, Mask.CREATE | ISDIR, b"big")], 0.0)
    [warning] = [r for r in caplog.records if "max_user_watches" in r.getMessage()]
    assert warning.journal == {"MESSAGE_ID": MESSAGE_ID_WATCH_LIMIT}  # type: ignore[attr-defined]
    assert [(e.mask, e.path, e.errno) for e in got] == [
        (Mask.CREATE | ISDIR, R + b"/big", 0),
        (Mask.ERROR | ISDIR, R + b"/big", errno.ENOSPC),
    ]
    assert "fs.inotify.max_user_watches" in (got[1].message or "")
    assert s.engine.tree.snapshot() == {R + b"/big": True}
    s.engine.retry_failed(errno.ENOSPC)
    assert s.engine.take_out() == []  # still full: quiet
    s.fd.full.clear()
    s.engine.retry_failed(errno.ENOSPC)
    assert s.engine.placer.retry == {}
    assert s.feed(ev(s.wd(b"/big"), Mask.CREATE, b"f")) == [("CREATE", b"/big/f", None)]
