"""The Engine's inline path for files' events, driven by scripted RawEvent batches.

Engine._process handles the events of files inline and shares the node lookup, the path
and the record's bookkeeping between a file's consecutive events; everything else goes
through its handlers, and the pairer is consulted only at a MOVED_FROM whose MOVED_TO is
not the next event. These tests pin what that sharing must never change: every event
reported once, in stream order, with the path the view had at that position, and file
records (``Node.files``, ``Node.dirty``) exactly as if each event were applied alone.

``PathFd`` stands in for the inotify fd: one wd per path (renames move it), so the
roots need not exist and nothing is read from disk.
"""

from __future__ import annotations

import itertools

import pytest

from fswatchd.events import FsEvent, Mask, RawEvent, mask_names
from fswatchd.watch.engine import Engine
from fswatchd.watch.tree import Node

R = b"/nonexistent-fswatchd-inline"
TIMEOUT = 0.03
ISDIR = int(Mask.ISDIR)
CREATE, OPEN, MODIFY = int(Mask.CREATE), int(Mask.OPEN), int(Mask.MODIFY)
CLOSE_WRITE, DELETE, ATTRIB = int(Mask.CLOSE_WRITE), int(Mask.DELETE), int(Mask.ATTRIB)
FROM, TO = int(Mask.MOVED_FROM), int(Mask.MOVED_TO)
WRITTEN = (CREATE, OPEN, MODIFY, CLOSE_WRITE)  # one file made by open+write+close


class PathFd:
    """A fake inotify fd: add_watch hands out one wd per path, as the kernel per inode."""

    def __init__(self) -> None:
        self.wd_of: dict[bytes, int] = {}
        self._next = itertools.count(1)

    def add_watch(self, path: bytes, mask: int) -> int:
        if path not in self.wd_of:
            self.wd_of[path] = next(self._next)
        return self.wd_of[path]

    def rename(self, src: bytes, dst: bytes) -> None:
        for path in [p for p in self.wd_of if p == src or p.startswith(src + b"/")]:
            self.wd_of[dst + path[len(src) :]] = self.wd_of.pop(path)

    def rm_watch(self, wd: int) -> None:
        self.wd_of = {p: w for p, w in self.wd_of.items() if w != wd}


class Script:
    """An Engine on a PathFd under root R; ``feed`` returns (names, relative path, src)."""

    def __init__(self) -> None:
        self.fd = PathFd()
        self.now = 0.0
        self.engine = Engine(
            self.fd,  # type: ignore[arg-type]
            int(Mask.ALL),
            move_timeout=TIMEOUT,
            should_watch=None,
            drain=list,
        )
        assert self.engine.roots.add(R, True, emit=False, strict=True)

    def feed(self, *events: RawEvent, dt: float = 0.0) -> list[tuple[str, bytes, bytes | None]]:
        self.now += dt
        return [_short(e) for e in self.engine.feed(list(events), self.now)]

    def mkdir(self, rel: bytes) -> int:
        """Make directory R+rel (one level below a watched one); returns its wd."""
        parent, _, name = rel.rpartition(b"/")
        self.fd.add_watch(R + rel, 0)
        self.feed(RawEvent(self.wd(parent), CREATE | ISDIR, 0, name))
        return self.wd(rel)

    def wd(self, rel: bytes) -> int:
        return self.fd.wd_of[R + rel]

    def node(self, rel: bytes) -> Node:
        return self.engine.tree.wds[self.wd(rel)]


def _short(e: FsEvent) -> tuple[str, bytes, bytes | None]:
    def rel(p: bytes | None) -> bytes | None:
        return None if p is None else p[len(R) :]

    return ("|".join(mask_names(e.mask)), rel(e.path) or b"", rel(e.src_path))


def written(wd: int, name: bytes) -> list[RawEvent]:
    return [RawEvent(wd, m, 0, name) for m in WRITTEN]


@pytest.fixture
def s() -> Script:
    return Script()


def test_written_files_are_reported_event_by_event(s: Script) -> None:
    """1. Two files written one after the other: eight events, each once, in order.
    2. Both records are "nothing known" (0) and dirty, waiting for the idle refresh.
    """
    got = s.feed(*written(1, b"a"), *written(1, b"b"))
    names = ["CREATE", "OPEN", "MODIFY", "CLOSE_WRITE"]
    assert got == [(n, b"/a", None) for n in names] + [(n, b"/b", None) for n in names]
    root = s.node(b"")
    assert root.files == {b"a": 0, b"b": 0}
    assert root.dirty == {b"a", b"b"}
    assert s.engine.placer.dirty == {root}


def test_each_event_carries_the_fields_of_a_kernel_file_event(s: Script) -> None:
    (event,) = s.engine.feed([RawEvent(1, CREATE, 0, b"f")], 0.0)
    assert event == FsEvent(R + b"/f", CREATE, False, None, False, 0, R, 0, None)


def test_a_clean_record_is_marked_stale_once_and_keeps_its_inode_bits(s: Script) -> None:
    """A MODIFY then a CLOSE_WRITE of a known file: bit 0 (clean) cleared, the rest kept."""
    root = s.node(b"")
    root.files[b"f"] = 0b1011_0001
    s.feed(RawEvent(1, MODIFY, 0, b"f"), RawEvent(1, CLOSE_WRITE, 0, b"f"))
    assert root.files[b"f"] == 0b1011_0000
    assert root.dirty == {b"f"}


def test_open_alone_leaves_the_record_clean(s: Script) -> None:
    root = s.node(b"")
    root.files[b"f"] = 0b101
    assert s.feed(RawEvent(1, OPEN, 0, b"f")) == [("OPEN", b"/f", None)]
    assert root.files[b"f"] == 0b101
    assert root.dirty is None


def test_delete_then_create_of_the_same_name_in_one_batch(s: Script) -> None:
    """1. A file written, deleted and made again: the record follows every step.
    2. The last CREATE resets it to "nothing known" even though the name repeats.
    """
    root = s.node(b"")
    got = s.feed(*written(1, b"f"), RawEvent(1, DELETE, 0, b"f"))
    assert got[-1] == ("DELETE", b"/f", None)
    assert b"f" not in root.files
    assert root.dirty == set()
    root.files[b"g"] = 0b11  # a clean record next to it is left alone
    s.feed(RawEvent(1, DELETE, 0, b"f"), RawEvent(1, CREATE, 0, b"f"))
    assert root.files == {b"f": 0, b"g": 0b11}
    assert root.dirty == {b"f"}


def test_create_after_attrib_of_the_same_name_resets_the_record(s: Script) -> None:
    """ATTRIB marks the record stale; a CREATE right after (no DELETE seen) still resets it."""
    root = s.node(b"")
    root.files[b"f"] = 0b111
    s.feed(RawEvent(1, ATTRIB, 0, b"f"), RawEvent(1, CREATE, 0, b"f"))
    assert root.files[b"f"] == 0


def test_interleaved_directories_get_their_own_paths(s: Script) -> None:
    a, b = s.mkdir(b"/a"), s.mkdir(b"/b")
    got = s.feed(
        RawEvent(a, CREATE, 0, b"f"),
        RawEvent(b, CREATE, 0, b"f"),
        RawEvent(a, MODIFY, 0, b"f"),
        RawEvent(1, MODIFY, 0, b"f"),
    )
    assert got == [
        ("CREATE", b"/a/f", None),
        ("CREATE", b"/b/f", None),
        ("MODIFY", b"/a/f", None),
        ("MODIFY", b"/f", None),
    ]
    assert s.node(b"/a").files == {b"f": 0}
    assert s.node(b"/b").files == {b"f": 0}


def test_a_file_event_after_its_directory_was_renamed_uses_the_new_path(s: Script) -> None:
    """1. A file's CREATE in /a, then /a renamed to /b, then the file's MODIFY: same
       batch, same wd, same name, but the path at that position is /b/f (H03).
    2. The record moved with the directory and is still dirty once.
    """
    a = s.mkdir(b"/a")
    s.fd.rename(R + b"/a", R + b"/b")
    got = s.feed(
        RawEvent(a, CREATE, 0, b"f"),
        RawEvent(1, FROM | ISDIR, 9, b"a"),
        RawEvent(1, TO | ISDIR, 9, b"b"),
        RawEvent(a, MODIFY, 0, b"f"),
    )
    assert got == [
        ("CREATE", b"/a/f", None),
        ("MOVED_TO|ISDIR", b"/b", b"/a"),
        ("MODIFY", b"/b/f", None),
    ]
    assert s.node(b"/b").files == {b"f": 0}
    assert s.node(b"/b").dirty == {b"f"}


def test_a_late_event_of_a_deleted_directory_is_dropped(s: Script) -> None:
    """Events for a detached directory's wd (deleted, IN_IGNORED not yet read) are
    dropped; the next event in another directory is reported."""
    a = s.mkdir(b"/a")
    got = s.feed(
        RawEvent(1, DELETE | ISDIR, 0, b"a"),
        RawEvent(a, CREATE, 0, b"late"),
        RawEvent(1, CREATE, 0, b"f"),
    )
    assert got == [("DELETE|ISDIR", b"/a", None), ("CREATE", b"/f", None)]


def test_events_of_an_unknown_wd_are_dropped(s: Script) -> None:
    assert s.feed(RawEvent(77, CREATE, 0, b"f"), RawEvent(1, CREATE, 0, b"g")) == [
        ("CREATE", b"/g", None)
    ]


def test_non_adjacent_rename_halves_are_paired_and_nothing_is_repeated(s: Script) -> None:
    """1. File events, a MOVED_FROM, an unrelated event, its MOVED_TO, more events.
    2. The events before the MOVED_FROM are reported once, then the pair as one
       MOVED_TO, then the rest in order: the pairer saw only the batch's tail.
    """
    got = s.feed(
        *written(1, b"x"),
        RawEvent(1, FROM, 4, b"x"),
        RawEvent(1, CREATE, 0, b"between"),
        RawEvent(1, TO, 4, b"y"),
        RawEvent(1, MODIFY, 0, b"y"),
    )
    assert got == [
        ("CREATE", b"/x", None),
        ("OPEN", b"/x", None),
        ("MODIFY", b"/x", None),
        ("CLOSE_WRITE", b"/x", None),
        ("MOVED_TO", b"/y", b"/x"),
        ("CREATE", b"/between", None),
        ("MODIFY", b"/y", None),
    ]
    assert s.node(b"").files.keys() == {b"y", b"between"}
    assert s.engine.pairer.held == 0


def test_a_rename_split_across_batches_holds_the_tail_until_its_moved_to(s: Script) -> None:
    """1. A batch ending in MOVED_FROM: the events before it are reported now, the
       MOVED_FROM is held.
    2. The next batch starts with the MOVED_TO: one paired MOVED_TO, then the rest.
    """
    assert s.feed(RawEvent(1, CREATE, 0, b"a"), RawEvent(1, FROM, 6, b"a")) == [
        ("CREATE", b"/a", None)
    ]
    assert s.engine.pairer.held == 1
    got = s.feed(RawEvent(1, TO, 6, b"b"), RawEvent(1, CREATE, 0, b"c"))
    assert got == [("MOVED_TO", b"/b", b"/a"), ("CREATE", b"/c", None)]
    assert s.engine.pairer.held == 0


def test_an_unpaired_moved_from_is_a_move_out_once_it_expires(s: Script) -> None:
    s.node(b"").files[b"gone"] = 0b1
    assert s.feed(RawEvent(1, FROM, 3, b"gone"), RawEvent(1, CREATE, 0, b"n")) == []
    assert s.feed(dt=TIMEOUT) == [("MOVED_FROM", b"/gone", None), ("CREATE", b"/n", None)]
    assert b"gone" not in s.node(b"").files


def test_hostile_names_pass_byte_exact(s: Script) -> None:
    """Newlines, shell metacharacters and bytes that are not UTF-8 are never touched."""
    names = [b"a\nb", b"$(rm -rf ~);`x`|&", b"\xff\xfe", b" lead and trail "]
    got = s.engine.feed([e for n in names for e in written(1, n)], 0.0)
    assert [e.path for e in got] == [R + b"/" + n for n in names for _ in WRITTEN]
    assert set(s.node(b"").files) == set(names)
