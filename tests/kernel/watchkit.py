"""Helpers for the RecursiveWatcher kernel tests: a driver, a replay view, the real tree.

Ordering never relies on sleeps. File system actions done between two awaits are
"frozen": the watcher reads nothing until the test awaits it, so races are deterministic.
The barrier creates a sentinel file in the first root and consumes events until its
CREATE arrives, then removes it and consumes until its DELETE: every event caused before
the barrier has then been delivered. Every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import itertools
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable

from fswatchd._inotify.limits import queued_events_limit
from fswatchd.events import FsEvent, Mask
from fswatchd.watch import RecursiveWatcher, Root
from fswatchd.watch.records import WALK_SLACK_NS

__all__ = ["DEADLINE", "Driver", "Replay", "real_tree"]

DEADLINE = 20.0  # seconds; generous for a loaded 2-core machine, never reached when correct
_counter = itertools.count()


def real_tree(roots: Iterable[bytes]) -> dict[bytes, bool]:
    """Every entry below ``roots`` on disk: path -> is_dir (lstat; links not followed)."""
    out: dict[bytes, bool] = {}
    stack = list(roots)
    while stack:
        with os.scandir(stack.pop()) as it:
            for entry in it:
                is_dir = entry.is_dir(follow_symlinks=False)
                out[entry.path] = is_dir
                if is_dir:
                    stack.append(entry.path)
    return out


class Replay:
    """A consumer's view rebuilt only from the event stream (as a rules engine would)."""

    def __init__(self, initial: dict[bytes, bool]) -> None:
        self.view = dict(initial)

    def _drop(self, path: bytes) -> None:
        self.view.pop(path, None)
        prefix = path + b"/"
        for key in [k for k in self.view if k.startswith(prefix)]:
            del self.view[key]

    def apply(self, ev: FsEvent) -> None:
        """Apply one event."""
        m, path = ev.mask, ev.path
        if path is None or m & Mask.ERROR:
            return
        if ev.root == path and m & (Mask.DELETE_SELF | Mask.MOVE_SELF | Mask.UNMOUNT):
            self._drop(path)
            return
        if m & Mask.CREATE:
            self.view[path] = ev.is_dir
        elif m & (Mask.DELETE | Mask.MOVED_FROM):
            self._drop(path)
        elif m & Mask.MOVED_TO:
            self._drop(path)
            self.view[path] = ev.is_dir
            if ev.src_path is not None:
                src, prefix = ev.src_path, ev.src_path + b"/"
                self.view.pop(src, None)
                for key in [k for k in self.view if k.startswith(prefix)]:
                    self.view[path + key[len(src) :]] = self.view.pop(key)


class Driver:
    """Runs a RecursiveWatcher for a test: start, collect, barrier, close.

    Args:
        roots: root paths (bytes) or Root objects.
        mask: the user mask (default: every event).
        kwargs: passed to RecursiveWatcher.
    """

    def __init__(self, roots: Iterable[bytes | Root], mask: int = Mask.ALL, **kwargs: object):
        self.roots = [r if isinstance(r, Root) else Root(r) for r in roots]
        self.mask = int(mask)
        self.watcher = RecursiveWatcher(self.roots, mask, **kwargs)  # type: ignore[arg-type]
        self._it: AsyncIterator[list[FsEvent]] | None = None
        self.events: list[FsEvent] = []
        self.replay: Replay | None = None

    async def __aenter__(self) -> Driver:
        await self.watcher.start()
        self._it = self.watcher.batches()
        self.replay = Replay(self.watcher.snapshot())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.watcher.close()
        if self._it is not None:
            await self._it.aclose()  # type: ignore[attr-defined]

    async def next_batch(self) -> list[FsEvent] | None:
        """The next batch, or None when the iteration ended."""
        assert self._it is not None and self.replay is not None
        try:
            batch = await anext(self._it)
        except StopAsyncIteration:
            return None
        for ev in batch:
            self.replay.apply(ev)
        self.events += batch
        return batch

    async def until(self, pred: Callable[[FsEvent], bool]) -> list[FsEvent]:
        """Consume until an event satisfies ``pred``; return the events consumed (all)."""
        start = len(self.events)
        async with asyncio.timeout(DEADLINE):
            while True:
                seen = self.events[start:]
                if any(pred(e) for e in seen):
                    return seen
                if await self.next_batch() is None:
                    return self.events[start:]

    async def barrier(self, where: bytes | None = None) -> list[FsEvent]:
        """Everything caused so far, delivered: returns events up to the sentinel's."""
        base = where or self.roots[0].path
        sentinel = base + b"/zz-barrier-%d" % next(_counter)
        start = len(self.events)
        with open(sentinel, "wb"):
            pass
        if not self.mask & Mask.DELETE:  # a narrow mask: any event of the sentinel will do
            await self.until(lambda e: e.path == sentinel)
            os.unlink(sentinel)
            return [e for e in self.events[start:] if e.path != sentinel]
        await self.until(lambda e: e.path == sentinel and bool(e.mask & Mask.CREATE))
        os.unlink(sentinel)
        await self.until(lambda e: e.path == sentinel and bool(e.mask & Mask.DELETE))
        return [e for e in self.events[start:] if e.path != sentinel]

    def paths(self, mask: int, events: list[FsEvent] | None = None) -> list[bytes | None]:
        """Paths of the events (default: all so far, barriers left out) with any ``mask`` bit."""
        return [
            e.path
            for e in (self.events if events is None else events)
            if e.mask & mask and not (e.path and b"/zz-barrier-" in e.path)
        ]

    def check_views(self) -> None:
        """Assert: replayed stream == watcher.snapshot() == the real trees."""
        assert self.replay is not None
        real = real_tree(r.path for r in self.roots)
        snap = self.watcher.snapshot()
        assert _diff(snap, real) == {}, "snapshot differs from disk"
        assert _diff(self.replay.view, real) == {}, "replayed stream differs from disk"


def _diff(a: dict[bytes, bool], b: dict[bytes, bool]) -> dict[bytes, tuple[object, object]]:
    """Keys where ``a`` and ``b`` differ: key -> (a's value or None, b's value or None)."""
    return {k: (a.get(k), b.get(k)) for k in a.keys() | b.keys() if a.get(k) != b.get(k)}


def renameat2_exchange(a: bytes, b: bytes) -> None:
    """renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) through libc."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    at_fdcwd, rename_exchange = -100, 2
    if libc.renameat2(at_fdcwd, a, at_fdcwd, b, rename_exchange) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), a)


def touch(path: bytes, data: bytes = b"") -> None:
    """Create or truncate ``path`` and write ``data`` (one CREATE/OPEN/MODIFY/CLOSE_WRITE)."""
    with open(path, "wb") as f:
        f.write(data)


def flood(where: bytes) -> None:
    """More events than the kernel queue holds; ``where`` must be watched already."""
    for i in range((queued_events_limit() or 16384) // 2 + 100):
        os.close(os.open(where + b"/f%d" % i, os.O_CREAT | os.O_WRONLY, 0o644))


def after_overflow(events: list[FsEvent]) -> list[FsEvent]:
    """The events from the (single) Q_OVERFLOW on."""
    at = [k for k, e in enumerate(events) if e.mask & Mask.Q_OVERFLOW]
    assert len(at) == 1, at
    return events[at[0] :]


def let_ctime_age() -> None:
    """ctime has no setter: let the clock pass the walk's slack (a clock distance the
    overflow repair's ctime test needs, not an ordering wait; no event marks it)."""
    time.sleep(2 * WALK_SLACK_NS / 1e9)


def hostile(length: int, salt: int) -> bytes:
    """A name of exactly ``length`` bytes: non-UTF-8, a newline, shell characters."""
    core = b"\xff\n$(x);|*%d-" % salt
    return (core * (length // len(core) + 1))[:length]
