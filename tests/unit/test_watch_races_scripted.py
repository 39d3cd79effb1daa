"""Scripted races of the recursive watcher: stale paths at add_watch time, rename cookies.

Driven like test_recursive_scripted.py (its ScriptFd answers add_watch from a path ->
inode table the test controls; the root is not on disk, so scans find nothing). A
directory whose add_watch fails with ENOENT because a rename not yet processed moved it
stays in the view and is tried again by its current path (Engine.retry_lost).
"""

from __future__ import annotations

import errno

from test_recursive_scripted import ISDIR, TIMEOUT, R, Script, ev, short

from fswatchd.events import Mask
from fswatchd.watch.tree import UNWATCHED

FROM, TO = int(Mask.MOVED_FROM), int(Mask.MOVED_TO)


def watched_path(s: Script, rel: bytes) -> bytes | None:
    """The tree's path of the node holding the watch of the inode now at ``rel``."""
    node = s.engine.tree.wds.get(s.wd(rel))
    return None if node is None else s.engine.tree.path(node)


def test_new_dir_whose_parent_is_renamed_before_it_is_watched() -> None:
    """mkdir p/x; mv p q, read in one batch: x is watched at q/x after the batch."""
    s = Script()
    s.mkdir(b"/p")
    p = s.wd(b"/p")
    s.fd.mkdir(R + b"/p/x")
    s.fd.rename(R + b"/p", R + b"/q")
    got = s.feed(
        ev(p, Mask.CREATE | ISDIR, b"x"),
        ev(1, FROM | ISDIR, b"p", cookie=8),
        ev(1, TO | ISDIR, b"q", cookie=8),
        ev(p, Mask.MOVE_SELF),
    )
    assert got == [("CREATE|ISDIR", b"/p/x", None), ("MOVED_TO|ISDIR", b"/q", b"/p")]
    assert watched_path(s, b"/q/x") == R + b"/q/x"
    assert s.feed(ev(s.wd(b"/q/x"), Mask.CREATE, b"f")) == [("CREATE", b"/q/x/f", None)]


def test_stale_path_waits_for_the_rename_split_across_batches() -> None:
    """The rename's MOVED_TO comes in a later batch: the retry after the first batch
    fails (the path is still stale, nothing reported), the one after the second works."""
    s = Script()
    s.mkdir(b"/p")
    p = s.wd(b"/p")
    s.fd.mkdir(R + b"/p/x")
    s.fd.rename(R + b"/p", R + b"/q")
    got = s.feed(ev(p, Mask.CREATE | ISDIR, b"x"), ev(1, FROM | ISDIR, b"p", cookie=3))
    assert got == [("CREATE|ISDIR", b"/p/x", None)]
    assert s.feed(ev(1, TO | ISDIR, b"q", cookie=3)) == [("MOVED_TO|ISDIR", b"/q", b"/p")]
    assert watched_path(s, b"/q/x") == R + b"/q/x"
    assert s.engine.tree.snapshot() == {R + b"/q": True, R + b"/q/x": True}


def test_dir_moved_into_a_just_renamed_dir_is_watched() -> None:
    """mv outside/d p/d; mv p q: the unpaired MOVED_TO d names a stale path."""
    s = Script()
    s.mkdir(b"/p")
    p = s.wd(b"/p")
    s.fd.mkdir(R + b"/q")
    s.fd.inodes[R + b"/q"] = s.fd.inodes.pop(R + b"/p")
    s.fd.mkdir(R + b"/q/d")
    s.feed(
        ev(p, TO | ISDIR, b"d", cookie=4),
        ev(1, FROM | ISDIR, b"p", cookie=5),
        ev(1, TO | ISDIR, b"q", cookie=5),
    )
    assert watched_path(s, b"/q/d") == R + b"/q/d"


def test_created_then_renamed_dir_is_one_paired_rename() -> None:
    """mkdir a; mv a b before the watcher reads: CREATE a, then MOVED_TO b with src a and
    the kernel's cookie; b is watched after the batch."""
    s = Script()
    s.fd.mkdir(R + b"/b")
    out = s.engine.feed(
        [
            ev(1, Mask.CREATE | ISDIR, b"a"),
            ev(1, FROM | ISDIR, b"a", cookie=77),
            ev(1, TO | ISDIR, b"b", cookie=77),
        ],
        0.0,
    )
    assert short(out) == [("CREATE|ISDIR", b"/a", None), ("MOVED_TO|ISDIR", b"/b", b"/a")]
    assert [e.cookie for e in out] == [0, 77]
    assert watched_path(s, b"/b") == R + b"/b"
    assert list(s.engine.tree.roots[R].dirs) == [b"b"]


def test_transient_dir_leaves_the_retry_set_with_its_delete() -> None:
    """H23: mkdir x; rmdir x: the DELETE takes the node out of the view and the set."""
    s = Script()
    got = s.feed(ev(1, Mask.CREATE | ISDIR, b"x"), ev(1, Mask.DELETE | ISDIR, b"x"))
    assert got == [("CREATE|ISDIR", b"/x", None), ("DELETE|ISDIR", b"/x", None)]
    assert s.engine.placer.lost == {}
    assert s.engine.tree.snapshot() == {}


def test_inexplicable_stale_path_is_given_up_when_settled() -> None:
    """A path that still fails once every queued event is processed (nothing explains it:
    a mount over a parent) is reported once as ERROR ENOENT and not retried again."""
    s = Script()
    assert s.feed(ev(1, Mask.CREATE | ISDIR, b"x")) == [("CREATE|ISDIR", b"/x", None)]
    s.feed()  # more batches without an explanation: still waiting, quiet
    assert list(s.engine.placer.lost) == [s.engine.tree.roots[R].dirs[b"x"]]
    s.engine.retry_lost(settled=True)
    out = s.engine.take_out()
    assert [(e.mask, e.path, e.errno) for e in out] == [
        (Mask.ERROR | ISDIR, R + b"/x", errno.ENOENT)
    ]
    assert s.engine.placer.lost == {}
    assert s.engine.tree.snapshot() == {R + b"/x": True}
    assert s.engine.tree.roots[R].dirs[b"x"].wd == UNWATCHED
    s.engine.retry_lost(settled=True)
    assert s.engine.take_out() == []


def test_settled_retry_of_a_path_changed_since_the_last_attempt_is_not_final() -> None:
    """Settled, but the node moved since its last failed attempt: tried again later, and
    given up only when the same path fails twice."""
    s = Script()
    s.feed(ev(1, Mask.CREATE | ISDIR, b"x"))
    root = s.engine.tree.roots[R]
    s.engine.tree.move(root.dirs[b"x"], root, b"y")  # as a rename applied without a retry
    s.engine.retry_lost(settled=True)
    assert s.engine.take_out() == []
    assert list(s.engine.placer.lost.values()) == [R + b"/y"]
    s.engine.retry_lost(settled=True)
    assert [e.path for e in s.engine.take_out()] == [R + b"/y"]
    assert s.engine.placer.lost == {}


def test_rename_cookies_are_passed_on() -> None:
    """Paired MOVED_TO, unpaired MOVED_FROM and MOVED_TO carry the kernel cookie; other
    events and synthetic events carry 0."""
    s = Script()
    s.mkdir(b"/d")
    s.fd.rename(R + b"/d", R + b"/e")
    out = s.engine.feed(
        [
            ev(1, Mask.CREATE, b"f"),
            ev(1, FROM, b"f", cookie=11),
            ev(1, TO, b"g", cookie=11),
            ev(1, FROM | ISDIR, b"d", cookie=12),
            ev(1, TO | ISDIR, b"e", cookie=12),
            ev(1, TO, b"in", cookie=13),
            ev(1, FROM, b"g", cookie=14),
        ],
        0.0,
    )
    out += s.engine.feed([], TIMEOUT)
    assert [(short([e])[0][:2], e.cookie, e.synthetic) for e in out] == [
        (("CREATE", b"/f"), 0, False),
        (("MOVED_TO", b"/g"), 11, False),
        (("MOVED_TO|ISDIR", b"/e"), 12, False),
        (("MOVED_TO", b"/in"), 13, False),
        (("MOVED_FROM", b"/g"), 14, False),
    ]
