"""Looking at real children from the tests: the spawner seam that records them, and the
process table (/proc) for their state."""

from __future__ import annotations

import asyncio
import os
import select
from collections.abc import Callable
from typing import Any, TypeVar

from fswatchd.actions.spawn import ChildSpawner

__all__ = [
    "ExitProtocol",
    "RecordingSpawner",
    "children",
    "loop_until",
    "proc_state",
    "process_gone",
    "zombie_children",
]

T = TypeVar("T")


class ExitProtocol(asyncio.SubprocessProtocol):
    """A child's protocol that only learns its exit: ``exited`` is done once it is reaped."""

    def __init__(self) -> None:
        self.exited: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def process_exited(self) -> None:
        self.exited.set_result(None)


class RecordingSpawner:
    """The spawner seam: spawn for real (one ChildSpawner, one epoll set for all), and
    remember each child's pid and transport."""

    def __init__(self) -> None:
        self._spawner = ChildSpawner()
        self.pids: list[int] = []
        self.transports: list[asyncio.SubprocessTransport] = []

    @property
    def watched_fds(self) -> int:
        """The fds of running children in the spawner's epoll set."""
        return self._spawner.watched_fds

    async def __call__(self, factory: Callable[[], Any], *argv: bytes, **kw: Any) -> Any:
        transport, protocol = await self._spawner(factory, *argv, **kw)
        self.pids.append(transport.get_pid())
        self.transports.append(transport)
        return transport, protocol


def process_gone(pid: int, deadline: float = 10.0) -> bool:
    """True once ``pid`` has exited (a pidfd turns readable), False if still alive after
    ``deadline`` seconds. Blocks the calling thread meanwhile."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], deadline)[0])
    finally:
        os.close(fd)


def proc_state(pid: int) -> str | None:
    """The state letter of ``pid`` in /proc (R, S, Z...), ``None`` once it is reaped."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0].decode()
    except FileNotFoundError:
        return None


def children() -> list[int]:
    """This process's children, live or zombie (/proc/self/task/*/children)."""
    pids: list[int] = []
    for tid in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{tid}/children", "rb") as f:
            pids += map(int, f.read().split())
    return pids


def zombie_children() -> list[int]:
    """This process's children that exited and are not reaped yet."""
    return [pid for pid in children() if proc_state(pid) == "Z"]


async def loop_until(check: Callable[[], T | None], timeout: float) -> T:
    """Poll ``check()`` every 5 ms, letting the loop run, until it returns something other
    than None; that value. Raises TimeoutError after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while (value := check()) is None:
            await asyncio.sleep(0.005)
    return value
