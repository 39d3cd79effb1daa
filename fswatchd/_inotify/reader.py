"""InotifyReader: asyncio intake of one InotifyFd, with a buffer the reader owns.

One ``loop.add_reader`` stays registered for the reader's lifetime. Its callback reads
256 KiB at a time until EAGAIN, parses the records into the reader's own list and then sets
an ``asyncio.Event``. The event carries no payload: consumers ``await wait()`` and then
``take()`` what is buffered. Cancelling a consumer therefore never loses records that were
already read from the kernel (a future holding the batch would take them with it).

Back-pressure: above ``high_water`` buffered records the reader removes itself from the
loop, so a slow consumer does not grow the buffer without bound. The kernel queue then
absorbs the load (``fs.inotify.max_queued_events``); if it overflows, the kernel queues
IN_Q_OVERFLOW and the watcher rescans, which costs less than unbounded memory. The reader
registers again as soon as :meth:`InotifyReader.take` empties the buffer.

Fairness: one wake-up reads at most ``READS_PER_WAKEUP`` blocks (one 256 KiB read) and
returns to the loop, which calls it again while the fd stays readable. A large backlog is
therefore handed over in slices of ~8,000 records rather than in one list: the consumer
starts at once, and the records alive at any moment stay few. That is what makes a drain
fast: every garbage collection pass walks every live record, and with a whole backlog
alive the collector cost more than the parsing (measured: 1 read per wake-up 455,000
events/s, 4 reads 376,000, the whole backlog ~300,000).
"""

from __future__ import annotations

import asyncio
import enum

from ..events import RawEvent
from .fd import DEFAULT_READ_SIZE, InotifyFd
from .parse import parse_events

__all__ = ["READS_PER_WAKEUP", "InotifyReader"]

#: Blocks of DEFAULT_READ_SIZE (256 KiB) read per add_reader wake-up.
READS_PER_WAKEUP = 1


class _State(enum.Enum):
    NEW = "new"  # constructed, start() not yet called
    READING = "reading"  # add_reader registered
    PAUSED = "paused"  # above high water: add_reader removed until take() empties the buffer
    FAILED = "failed"  # a read or parse error; raised by wait() once the buffer is taken
    CLOSED = "closed"


class InotifyReader:
    """Read an InotifyFd from the running asyncio loop into a buffer of RawEvents.

    Args:
        fd: the inotify instance; the reader never closes it (its owner does).
        high_water: buffered record count (int >= 1) above which reading pauses.

    Lifecycle: ``start()`` (inside the running loop) -> ``wait()``/``take()``/``drain()``
    -> ``close()``. Single-threaded: call everything from the loop's thread.
    """

    def __init__(self, fd: InotifyFd, *, high_water: int = 1_000_000) -> None:
        if high_water < 1:
            raise ValueError(f"high_water must be >= 1, got {high_water}")
        self._fd = fd
        self._fileno = -1
        self._high_water = high_water
        self._events: list[RawEvent] = []
        self._ready = asyncio.Event()
        self._behind = False
        self._interrupted = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._state = _State.NEW
        self._error: BaseException | None = None

    @property
    def pending(self) -> int:
        """Number of records buffered and not yet taken."""
        return len(self._events)

    @property
    def is_behind(self) -> bool:
        """True when the last wake-up stopped before the kernel queue was empty.

        The fd is still readable and the loop reads more at its next turn: the watcher
        is not idle, even with nothing buffered.
        """
        return self._behind

    @property
    def is_paused(self) -> bool:
        """True while reading is paused because ``pending`` reached ``high_water``."""
        return self._state is _State.PAUSED

    def start(self) -> None:
        """Register the fd with the running loop (``loop.add_reader``).

        Raises:
            RuntimeError: no running loop, or start() was already called.
            ValueError: the fd is closed.
        """
        if self._state is not _State.NEW:
            raise RuntimeError(f"InotifyReader.start() called twice (state {self._state.value})")
        self._loop = asyncio.get_running_loop()
        self._fileno = self._fd.fileno()
        self._loop.add_reader(self._fileno, self._on_readable)
        self._state = _State.READING

    async def wait(self) -> None:
        """Return once records are buffered, or the reader is closed. Cancellable.

        Cancelling loses nothing: records stay buffered for the next ``take()``.

        Raises:
            OSError | ValueError: the read or parse error that stopped the reader, raised
                once the records buffered before it have been taken.
        """
        while not self._events:
            if self._error is not None:
                raise self._error
            if self._state is _State.CLOSED or self._interrupted:
                self._interrupted = False
                return
            self._ready.clear()
            await self._ready.wait()

    def interrupt(self) -> None:
        """Make the current (or next) ``wait()`` return without records, once.

        For the owner that produced work of its own (a reload's scan) while its consumer
        waits on the fd. Like every wake-up here, it carries no payload.
        """
        self._interrupted = True
        self._ready.set()

    def take(self) -> list[RawEvent]:
        """Pop every buffered record, oldest first (``[]`` when none); resumes reading."""
        events, self._events = self._events, []
        self._ready.clear()
        if self._state is _State.PAUSED:
            self._register()
        return events

    def drain(self) -> int:
        """Read the fd until EAGAIN now, ignoring ``high_water``; return the records added.

        Every event the kernel queued before this call is buffered when it returns, so it
        is a barrier (e.g. before an overflow rescan).

        Raises:
            OSError | ValueError: a read or parse error (the reader is then failed).
            RuntimeError: the reader is closed or not started.
        """
        if self._state in (_State.NEW, _State.CLOSED):
            raise RuntimeError(f"InotifyReader.drain() on a {self._state.value} reader")
        if self._error is not None:
            raise self._error
        added = self._read_until_eagain(limit=None)
        if self._error is not None:
            raise self._error
        return added

    def close(self) -> None:
        """Unregister from the loop and wake waiters. Idempotent. Does not close the fd."""
        if self._state is _State.CLOSED:
            return
        self._unregister()
        self._state = _State.CLOSED
        self._ready.set()

    def _on_readable(self) -> None:
        """add_reader callback: read up to READS_PER_WAKEUP blocks, then wake consumers."""
        self._read_until_eagain(limit=self._high_water, reads=READS_PER_WAKEUP)

    def _read_until_eagain(self, limit: int | None, reads: int | None = None) -> int:
        """Read and parse until EAGAIN, ``limit`` records buffered or ``reads`` blocks read.

        Returns the records added. An error is recorded, not raised: in the add_reader
        callback an exception would only reach the loop's exception handler and the fd
        would stay readable forever.
        """
        events = self._events
        before = len(events)
        read = self._fd.read
        left = -1 if reads is None else reads
        self._behind = True
        try:
            while left and (limit is None or len(events) < limit):
                left -= 1
                data = read(DEFAULT_READ_SIZE)
                if not data:  # not expected from inotify; avoids spinning on it
                    self._behind = False
                    break
                events.extend(parse_events(data))
        except BlockingIOError:
            self._behind = False
        except (OSError, ValueError) as exc:
            self._fail(exc)
        if limit is not None and len(events) >= limit and self._state is _State.READING:
            self._unregister()
            self._state = _State.PAUSED
        added = len(events) - before
        if added:
            self._ready.set()
        return added

    def _fail(self, exc: BaseException) -> None:
        """Stop reading for good; wait() raises ``exc`` after the buffer is taken."""
        self._error = exc
        self._unregister()
        self._state = _State.FAILED
        self._ready.set()

    def _register(self) -> None:
        """Re-add the fd to the loop after a high-water pause."""
        assert self._loop is not None
        self._loop.add_reader(self._fileno, self._on_readable)
        self._state = _State.READING

    def _unregister(self) -> None:
        """Remove the fd from the loop if it is registered."""
        if self._state is _State.READING and self._loop is not None:
            self._loop.remove_reader(self._fileno)
