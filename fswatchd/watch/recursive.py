"""RecursiveWatcher: watch trees recursively and yield FsEvents that stay right.

The asyncio face of :class:`~fswatchd.watch.engine.Engine`: one InotifyFd and one
InotifyReader for all roots (H06); batches of FsEvents in stream order. Between batches,
while nothing is queued, it waits for held rename halves to expire (after draining the
fd, so a late MOVED_TO is never mistaken for a move out) and refreshes the file records
that events made stale. See docs/watcher.md for the guarantees.
"""

from __future__ import annotations

import asyncio
import enum
import errno
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass

from .._inotify.fd import InotifyFd
from .._inotify.reader import InotifyReader
from ..events import FsEvent, Mask, RawEvent
from ..text import counted
from .engine import Engine

__all__ = ["RecursiveWatcher", "Root"]

log = logging.getLogger(__name__)

#: Events that reading a directory queues on its watch and on its parent's.
_DIR_READS = int(Mask.OPEN | Mask.ACCESS | Mask.CLOSE_NOWRITE)
#: Dirty file records refreshed (lstat) per idle step.
_SETTLE_BUDGET = 2048
#: Seconds between retries of directories that hit the watch limit (ENOSPC).
_ENOSPC_RETRY = 30.0


@dataclass(frozen=True, slots=True)
class Root:
    """A root to watch: absolute ``path`` (bytes); ``recursive`` False = its entries only."""

    path: bytes
    recursive: bool = True


class _State(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    CLOSED = "closed"


class RecursiveWatcher:
    """Watch ``roots`` with inotify(7) and report FsEvents (paths, renames, scans, repairs).

    Args:
        roots: the roots; paths are made absolute (``os.path.abspath``) once.
        mask: events to report (``Mask`` bits); Q_OVERFLOW and ERROR are always reported.
        fd_factory: builds the InotifyFd (a seam for tests).
        clock: monotonic seconds, for the rename-pairing timeout.
        move_timeout: seconds an unpaired MOVED_FROM waits after the fd is drained.
        should_watch: called with a directory's absolute path before it is watched;
            False = leave it unwatched and do not descend. None = watch everything.
        rearm: True = a root that is missing (at start or later) is waited for and
            watched when it appears; False = a missing root is an error at start, and
            iteration ends when no root is left.

    Lifecycle: ``await start()`` -> iterate ``batches()`` (or ``async for ev in w``) ->
    ``close()``. One consumer at a time; everything runs in the loop's thread.
    """

    def __init__(
        self,
        roots: Iterable[Root],
        mask: int,
        *,
        fd_factory: Callable[[], InotifyFd] = InotifyFd,
        clock: Callable[[], float] = time.monotonic,
        move_timeout: float = 0.03,
        should_watch: Callable[[bytes], bool] | None = None,
        rearm: bool = False,
    ) -> None:
        self._roots = {_abs(r.path): r.recursive for r in roots}
        self._mask = int(mask)
        self._fd_factory = fd_factory
        self._clock = clock
        self._move_timeout = move_timeout
        self._should_watch = should_watch
        self._rearm = rearm
        self._state = _State.NEW
        self._fd: InotifyFd | None = None
        self._reader: InotifyReader | None = None
        self._engine: Engine | None = None
        self._pending: list[FsEvent] = []

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Place every initial watch (the initial walk reports no file events).

        Raises:
            WatchLimitError: a root hit the watch limit (ENOSPC) and ``rearm`` is False.
            WatchError: a root cannot be watched (missing, not a directory, EACCES) and
                ``rearm`` is False. With ``rearm``, such roots are logged and waited for.
            RuntimeError: start() called twice or after close().
        """
        if self._state is not _State.NEW:
            raise RuntimeError(f"RecursiveWatcher.start() on a {self._state.value} watcher")
        fd = self._fd_factory()
        try:
            reader = InotifyReader(fd)
            # The walk reads every directory: with OPEN/ACCESS/CLOSE_NOWRITE in the watch
            # masks, each read queues 6 events (on the directory's watch and its parent's)
            # that are never reported; 100,000 directories would overflow the kernel queue
            # and force a full rescan right after start. So the walk places the watches
            # without them, and they are added once every watch is in place.
            engine = Engine(
                fd,
                self._mask & ~_DIR_READS,
                move_timeout=self._move_timeout,
                should_watch=self._should_watch,
                drain=self._drain,
            )
            self._fd, self._reader, self._engine = fd, reader, engine
            for path, recursive in self._roots.items():
                self._start_root(engine, path, recursive)
            if self._mask & _DIR_READS:
                engine.set_mask(self._mask)
            reader.start()
        except BaseException:
            self._fd = self._reader = self._engine = None
            fd.close()
            raise
        self._pending = engine.take_out()
        self._state = _State.RUNNING
        if log.isEnabledFor(logging.INFO):  # counting the files walks the whole tree
            log.info(
                "watching %s: %s, %s",
                counted(engine.roots.alive, "root"),
                counted(len(engine.tree.wds), "directory", "directories"),
                counted(engine.tree.count_files(), "file"),
            )

    def _start_root(self, engine: Engine, path: bytes, recursive: bool) -> None:
        """Watch one root at start; with rearm, a missing root is waited for."""
        if engine.roots.add(path, recursive, emit=False, strict=not self._rearm):
            return
        log.warning("root %r cannot be watched now; waiting for it to appear", os.fsdecode(path))
        engine.roots.arm(path)

    def close(self) -> None:
        """Stop: close the reader and the fd (the kernel drops every watch). Idempotent."""
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        if self._reader is not None:
            self._reader.close()
        if self._fd is not None:
            self._fd.close()

    async def set_roots(self, roots: Iterable[Root], mask: int | None = None) -> None:
        """Reload: keep unchanged roots, drop removed ones, add (scan, report) new ones.

        Args:
            roots: the roots from now on.
            mask: the events to report from now on; None keeps the current mask. Watches
                stay in place; only those whose kernel mask must change are re-added.
        """
        new = {_abs(r.path): r.recursive for r in roots}
        engine = self._engine
        if mask is not None:
            self._mask = int(mask)
        if engine is None or self._state is not _State.RUNNING:
            self._roots = new
            return
        if mask is not None:
            engine.set_mask(self._mask)
        for path, recursive in list(engine.recursive_of.items()):
            if new.get(path) != recursive:
                engine.roots.remove(path)
        for path, recursive in new.items():
            if path in engine.recursive_of:
                continue
            if not engine.roots.add(path, recursive, emit=True, strict=False) and self._rearm:
                engine.roots.arm(path)
        self._roots = new
        self._pending += engine.take_out()
        if self._pending and self._reader is not None:
            self._reader.interrupt()  # batches() may be waiting on the fd: hand these over

    # -- iteration -------------------------------------------------------------------

    async def batches(self) -> AsyncIterator[list[FsEvent]]:
        """Yield lists of FsEvents in stream order until closed or no root is left.

        Raises:
            RuntimeError: start() was not called.
            OSError: the reader failed (a read error on the inotify fd).
        """
        engine, reader = self._engine, self._reader
        if engine is None or reader is None:
            raise RuntimeError("RecursiveWatcher.batches() before start()")
        while True:
            if self._pending:
                out, self._pending = self._pending, []
                yield out
                continue
            if self._state is _State.CLOSED:
                return
            if not self._rearm and engine.roots.alive == 0:
                return
            if not reader.pending and not await self._idle(engine, reader):
                continue
            if self.is_closed:
                return
            out = engine.feed(reader.take(), self._clock())
            engine.roots.poll(self._rearm)
            placer = engine.placer
            if (placer.moved or placer.unsure) and self._caught_up(engine, reader):
                engine.check_moves()
            out += engine.take_out()
            if out:
                yield out

    async def _idle(self, engine: Engine, reader: InotifyReader) -> bool:
        """Wait for events or the pairing deadline; False = nothing to feed, loop again."""
        deadline = engine.deadline
        if deadline is None:
            if engine.placer.lost and not reader.is_behind and not self._queued():
                # Caught up: every event queued so far is processed, so a path that
                # still fails is not explained by a rename waiting to be read.
                engine.retry_lost(settled=True)
                self._pending += engine.take_out()
                return False
            # Refresh records only when idle: nothing buffered and nothing queued in the
            # kernel. An lstat sees the present; events still queued describe the past,
            # and applying them to a record read after them would mix the two (a
            # RENAME_EXCHANGE would no longer be recognised by its inodes).
            if engine.placer.dirty and not reader.is_behind and not self._queued():
                engine.settle(_SETTLE_BUDGET)
                await asyncio.sleep(0)
                return False
            if not any(err == errno.ENOSPC for err in engine.placer.retry.values()):
                await reader.wait()
                return True
            try:  # directories left unwatched by the watch limit: try again now and then
                async with asyncio.timeout(_ENOSPC_RETRY):
                    await reader.wait()
            except TimeoutError:
                engine.retry_failed(errno.ENOSPC)
                return False
            return True
        delay = deadline - self._clock()
        if delay > 0:
            try:
                async with asyncio.timeout(delay):
                    await reader.wait()
            except TimeoutError:
                pass
        if not reader.pending and self._state is _State.RUNNING:
            reader.drain()  # barrier: every half the kernel queued is now buffered
        return True

    def _caught_up(self, engine: Engine, reader: InotifyReader) -> bool:
        """Every event the kernel queued so far is processed, and no rename half is held."""
        return engine.deadline is None and not reader.pending and not self._queued()

    def _queued(self) -> int:
        """Bytes of events the kernel holds for the fd now (FIONREAD; 0 when closed)."""
        fd = self._fd
        return 0 if fd is None or fd.closed else fd.bytes_queued()

    async def __aiter__(self) -> AsyncIterator[FsEvent]:
        """Event by event over :meth:`batches`."""
        async for batch in self.batches():
            for ev in batch:
                yield ev

    def _drain(self) -> list[RawEvent]:
        """Read everything queued now and hand it over (used after an overflow)."""
        assert self._reader is not None
        self._reader.drain()
        return self._reader.take()

    # -- state -----------------------------------------------------------------------

    @property
    def is_closed(self) -> bool:
        """True once :meth:`close` has run."""
        return self._state is _State.CLOSED

    def has_input(self) -> bool:
        """Whether raw events wait to be processed: read but not taken, or still in the fd.

        The watchdog's probe: a watcher with input that makes no progress is wedged; one
        without input is idle and healthy. FIONREAD on the inotify fd gives the bytes the
        kernel holds (inotify(7)).
        """
        reader, fd = self._reader, self._fd
        if reader is None or fd is None or fd.closed:
            return False
        return reader.pending > 0 or fd.bytes_queued() > 0

    @property
    def watch_count(self) -> int:
        """Number of directory watches (detached ones not yet freed included)."""
        return len(self._engine.tree.wds) if self._engine else 0

    @property
    def watches_in_use(self) -> int:
        """Number of inotify watches held: :attr:`watch_count`, plus the guards on the
        roots' ancestors and the anchors of missing roots (all count toward
        fs.inotify.max_user_watches)."""
        engine = self._engine
        if engine is None:
            return 0
        wds = engine.tree.wds
        extra = engine.roots.guards.keys() | engine.anchors.wds.keys()
        return len(wds) + sum(1 for wd in extra if wd not in wds)

    @property
    def file_count(self) -> int:
        """Number of non-directory entries in the view."""
        return self._engine.tree.count_files() if self._engine else 0

    @property
    def roots_alive(self) -> int:
        """Number of roots currently watched."""
        return self._engine.roots.alive if self._engine else 0

    def snapshot(self) -> dict[bytes, bool]:
        """The view: absolute path -> is_dir for every entry below the roots."""
        return self._engine.tree.snapshot() if self._engine else {}

    def process(self, events: list[RawEvent], now: float) -> list[FsEvent]:
        """Feed raw events directly (a seam for scripted tests; bypasses the reader)."""
        if self._engine is None:
            raise RuntimeError("RecursiveWatcher.process() before start()")
        return self._engine.feed(events, now)


def _abs(path: bytes) -> bytes:
    """``path`` made absolute and normalised (no trailing slash), bytes."""
    return os.path.abspath(path)
