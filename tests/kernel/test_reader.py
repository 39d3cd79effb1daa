"""InotifyReader on the running loop with a real inotify fd under tmp_path.

Ordering never relies on sleeps: a sentinel file's CREATE is the barrier that says
"everything caused before it has been read", and every wait has an asyncio.timeout.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from fswatchd._inotify.fd import InotifyFd
from fswatchd._inotify.flags import Mask
from fswatchd._inotify.reader import InotifyReader
from fswatchd.events import RawEvent

DEADLINE = 10.0  # seconds; generous for a loaded 2-core machine, never reached when correct
SENTINEL = b"zz-sentinel"


@pytest.fixture
def ifd() -> Iterator[InotifyFd]:
    with InotifyFd() as fd:
        yield fd


def watch(ifd: InotifyFd, path: Path) -> int:
    return ifd.add_watch(bytes(path), Mask.CREATE | Mask.ONLYDIR)


async def collect_until_sentinel(reader: InotifyReader) -> list[RawEvent]:
    """wait()/take() until the sentinel's CREATE has been taken; all events, in order."""
    events: list[RawEvent] = []
    async with asyncio.timeout(DEADLINE):
        while not any(e.name == SENTINEL for e in events):
            await reader.wait()
            events += reader.take()
    return events


async def start_waiter(reader: InotifyReader) -> asyncio.Task[None]:
    """A task blocked in reader.wait(), returned once it is really waiting."""
    waiting = asyncio.Event()

    async def waiter() -> None:
        waiting.set()
        await reader.wait()

    task = asyncio.create_task(waiter())
    async with asyncio.timeout(DEADLINE):
        await waiting.wait()
    return task


def registered(reader_fd: int) -> bool:
    """Whether the running loop has a reader for ``reader_fd`` (it is removed if so)."""
    return asyncio.get_running_loop().remove_reader(reader_fd)


async def test_events_arrive_in_order(ifd: InotifyFd, tmp_path: Path) -> None:
    wd = watch(ifd, tmp_path)
    reader = InotifyReader(ifd)
    reader.start()
    names = [b"f%03d" % i for i in range(300)] + [SENTINEL]
    for name in names:
        (tmp_path / name.decode()).touch()
    events = await collect_until_sentinel(reader)
    reader.close()
    assert events == [RawEvent(wd, int(Mask.CREATE), 0, n) for n in names]


async def test_cancelled_consumer_loses_nothing_read_before_the_cancel(
    ifd: InotifyFd, tmp_path: Path
) -> None:
    """1. A consumer waits. 2. Events are read (drain) and wake it.
    3. It is cancelled before it runs again. 4. take() still returns every event.
    """
    watch(ifd, tmp_path)
    reader = InotifyReader(ifd)
    reader.start()
    task = await start_waiter(reader)
    for i in range(50):
        (tmp_path / f"f{i}").touch()
    assert reader.drain() == 50
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [e.name for e in reader.take()] == [b"f%d" % i for i in range(50)]
    reader.close()


async def test_consumer_cancelled_before_the_callback_runs_loses_nothing(
    ifd: InotifyFd, tmp_path: Path
) -> None:
    watch(ifd, tmp_path)
    reader = InotifyReader(ifd)
    reader.start()
    task = await start_waiter(reader)
    for i in range(20):
        (tmp_path / f"f{i}").touch()
    (tmp_path / SENTINEL.decode()).touch()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    events = await collect_until_sentinel(reader)
    assert [e.name for e in events] == [b"f%d" % i for i in range(20)] + [SENTINEL]
    reader.close()


async def test_drain_is_a_barrier(ifd: InotifyFd, tmp_path: Path) -> None:
    watch(ifd, tmp_path)
    reader = InotifyReader(ifd)
    reader.start()
    assert reader.drain() == 0
    for i in range(1000):
        (tmp_path / f"f{i}").touch()
    # No await in between: the loop never ran, so only drain() can have read them.
    assert reader.drain() == 1000
    assert reader.pending == 1000
    assert [e.name for e in reader.take()] == [b"f%d" % i for i in range(1000)]
    assert reader.pending == 0
    assert reader.take() == []
    reader.close()


async def test_high_water_pauses_and_take_resumes(ifd: InotifyFd, tmp_path: Path) -> None:
    """1. high_water=5; 10 creates are read: the reader pauses (no add_reader).
    2. 10 more creates and the sentinel wait in the kernel queue meanwhile.
    3. take() empties the buffer and resumes; the rest arrives, in order.
    """
    watch(ifd, tmp_path)
    reader = InotifyReader(ifd, high_water=5)
    reader.start()
    names = [b"a%d" % i for i in range(10)]
    for name in names:
        (tmp_path / name.decode()).touch()
    async with asyncio.timeout(DEADLINE):
        await reader.wait()
    assert reader.is_paused
    assert reader.pending == 10
    assert not registered(ifd.fileno())
    later = [b"b%d" % i for i in range(10)] + [SENTINEL]
    for name in later:
        (tmp_path / name.decode()).touch()
    events = reader.take()
    assert not reader.is_paused
    events += await collect_until_sentinel(reader)
    assert [e.name for e in events] == names + later
    reader.close()
    assert not registered(ifd.fileno())


async def test_drain_reads_past_high_water(ifd: InotifyFd, tmp_path: Path) -> None:
    watch(ifd, tmp_path)
    reader = InotifyReader(ifd, high_water=2)
    reader.start()
    for i in range(30):
        (tmp_path / f"f{i}").touch()
    assert reader.drain() == 30
    assert len(reader.take()) == 30
    reader.close()


async def test_close_unregisters_and_wakes_waiters(ifd: InotifyFd) -> None:
    reader = InotifyReader(ifd)
    reader.start()
    waiter = await start_waiter(reader)
    reader.close()
    reader.close()
    async with asyncio.timeout(DEADLINE):
        await waiter
    assert not registered(ifd.fileno())
    async with asyncio.timeout(DEADLINE):
        await reader.wait()  # a closed reader never blocks
    with pytest.raises(RuntimeError, match="closed"):
        reader.drain()
    assert not ifd.closed  # the fd belongs to its owner


async def test_read_error_surfaces_after_the_buffered_events(tmp_path: Path) -> None:
    """1. An event is buffered. 2. The owner closes the fd under the live reader (misuse).
    3. drain() raises; take() still returns the buffered event; then wait() raises.
    """
    fd = InotifyFd()
    watch(fd, tmp_path)
    reader = InotifyReader(fd)
    reader.start()
    (tmp_path / "kept").touch()
    assert reader.drain() == 1
    fd.close()
    with pytest.raises(ValueError, match="closed"):
        reader.drain()
    async with asyncio.timeout(DEADLINE):
        await reader.wait()  # buffered events first
    assert [e.name for e in reader.take()] == [b"kept"]
    with pytest.raises(ValueError, match="closed"):
        async with asyncio.timeout(DEADLINE):
            await reader.wait()
    reader.close()


def test_start_needs_a_running_loop(ifd: InotifyFd) -> None:
    reader = InotifyReader(ifd)
    with pytest.raises(RuntimeError):
        reader.start()


async def test_start_twice_is_an_error(ifd: InotifyFd) -> None:
    reader = InotifyReader(ifd)
    reader.start()
    with pytest.raises(RuntimeError, match="twice"):
        reader.start()
    reader.close()


def test_high_water_must_be_positive(ifd: InotifyFd) -> None:
    with pytest.raises(ValueError, match="high_water"):
        InotifyReader(ifd, high_water=0)


async def test_interrupt_wakes_a_waiter_once_without_records(tmp_path: Path) -> None:
    """1. A waiter blocks on an idle fd.  2. interrupt(): it returns, take() is empty.
    3. The next wait() blocks again until a real record arrives."""
    with InotifyFd() as fd:
        fd.add_watch(os.fsencode(tmp_path), Mask.CREATE)
        reader = InotifyReader(fd)
        reader.start()
        try:
            waiter = asyncio.ensure_future(reader.wait())
            await asyncio.sleep(0)
            assert not waiter.done()
            reader.interrupt()
            async with asyncio.timeout(5):
                await waiter
            assert reader.take() == []
            again = asyncio.ensure_future(reader.wait())
            await asyncio.sleep(0)
            assert not again.done()
            (tmp_path / "f").touch()
            async with asyncio.timeout(5):
                await again
            assert [e.name for e in reader.take()] == [b"f"]
        finally:
            reader.close()
