"""Run one child in its own process group: capture its output by line, time it out, reap it.

This is the runner under both ``run:`` (argv) and ``shell:`` actions. The child is started
by a :data:`Spawner` (:class:`fswatchd.actions.spawn.ChildSpawner`: clone or posix_spawn, a
pidfd for the exit, the output pipes read on the loop) and talks to a small
``asyncio.SubprocessProtocol`` of ours:

* the protocol learns of the exit at once (``process_exited``), and the runner stops
  reading output after a short drain window: a background grandchild that inherited
  stdout cannot hold the action (and its concurrency slot) open until it exits;
* output is split into lines in ``pipe_data_received`` callbacks: no reader tasks, no
  ``StreamReader`` per pipe; spawning cost matters at thousands of commands per second.

The transport is closed only after the exit is known, so nothing else ever calls
waitpid(2) on the child (the asyncio fallback of ``spawn_exec`` would otherwise kill it).

Signals go to the whole process group (killpg(2)): the child was started in a new session
(setsid(2)), so its pid is the group id, and its children are stopped with it.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .spawn import spawn_exec
from .transport import ChildTransport, killpg

__all__ = [
    "DRAIN_AFTER_EXIT",
    "KILL_WAIT",
    "LINE_MAX",
    "ChildExit",
    "LineSplitter",
    "Spawner",
    "run_child",
    "spawn_exec",
]

#: Longest output line logged, in bytes; the rest of a longer line is dropped.
LINE_MAX = 64 * 1024
#: Seconds to keep reading output after the child exited (a grandchild may hold the pipe).
DRAIN_AFTER_EXIT = 1.0
#: Seconds to wait for the child to be reaped after SIGKILL.
KILL_WAIT = 5.0
#: Marks a line cut at LINE_MAX.
_TRUNCATED = b" [line truncated]"
_STDOUT, _STDERR = 1, 2

#: ``(protocol_factory, *argv, env=, cwd=, capture=, **credentials) -> (transport,
#: protocol)``: start ``argv`` in a new session, stdin /dev/null, the ``capture``d streams
#: (1, 2) to the protocol, the others to /dev/null (see
#: :func:`~fswatchd.actions.spawn.spawn_exec`); the seam tests use to fail or observe
#: spawning.
Spawner = Callable[..., Awaitable[tuple[asyncio.SubprocessTransport, asyncio.BaseProtocol]]]


class LineSplitter:
    """Split a byte stream into lines, each without its newline and at most ``limit`` bytes.

    A longer line is cut at ``limit`` bytes, marked with ``b" [line truncated]"``, and the
    rest of it up to the next newline is dropped, so a child cannot exhaust our memory.
    """

    def __init__(self, limit: int = LINE_MAX) -> None:
        """Args: limit: the longest line kept, in bytes."""
        self._limit = limit
        self._buf = bytearray()
        self._skipping = False

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data``; return the lines it completed (or cut), in order."""
        lines: list[bytes] = []
        start = 0
        while (end := data.find(b"\n", start)) >= 0:
            if self._skipping:
                self._skipping = False
            else:
                self._buf += data[start:end]
                lines.append(self._take())
            start = end + 1
        if not self._skipping:
            self._buf += data[start:]
            if len(self._buf) > self._limit:
                lines.append(self._take())
                self._skipping = True
        return lines

    def flush(self) -> list[bytes]:
        """End of stream: the unterminated last line, if any."""
        skipping, self._skipping = self._skipping, False
        return [] if skipping or not self._buf else [self._take()]

    def _take(self) -> bytes:
        """Empty the buffer into one line, cut and marked if it is too long."""
        line = bytes(self._buf)
        self._buf.clear()
        return line if len(line) <= self._limit else line[: self._limit] + _TRUNCATED


class _ChildProtocol(asyncio.SubprocessProtocol):
    """Feeds output lines to a callback and resolves futures on exit and on full close."""

    def __init__(self, on_line: Callable[[int, bytes], None]) -> None:
        loop = asyncio.get_running_loop()
        self._on_line = on_line
        self._splitters = {_STDOUT: LineSplitter(), _STDERR: LineSplitter()}
        self.exited: asyncio.Future[None] = loop.create_future()
        self.finished: asyncio.Future[None] = loop.create_future()

    def pipe_data_received(self, fd: int, data: bytes | str) -> None:
        assert isinstance(data, bytes)
        for line in self._splitters[fd].feed(data):
            self._on_line(fd, line)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        self.flush(fd)

    def flush(self, fd: int) -> None:
        """Hand over the last unterminated line of ``fd``."""
        for line in self._splitters[fd].flush():
            self._on_line(fd, line)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.finished.done():
            self.finished.set_result(None)


@dataclass(frozen=True, slots=True)
class ChildExit:
    """How a child ended.

    Attributes:
        returncode: exit status (>= 0), or minus the signal number that killed it;
            ``None`` if it was still not reaped KILL_WAIT seconds after SIGKILL (a process
            stuck in uninterruptible sleep; the loop's child watcher reaps it later).
        timed_out: the runner stopped it because it ran past its timeout.
    """

    returncode: int | None
    timed_out: bool


async def _stop_group(
    pgid: int, gone: asyncio.Future[None], grace: float, *, kill_wait: float = KILL_WAIT
) -> None:
    """SIGTERM the group, wait up to ``grace`` seconds for ``gone``, then SIGKILL the group.

    Args:
        pgid: the process group (the child's pid: it leads its own session).
        gone: done once what is stopped went (the leader reaped, or its output closed).
        grace: seconds between SIGTERM and SIGKILL.
        kill_wait: seconds to wait for ``gone`` after SIGKILL.

    The SIGKILL is sent even when ``gone`` came in time: it sweeps group members that
    ignore SIGTERM. The group id cannot name another group meanwhile, because Linux does not
    reuse a pid while any process still has it as its group id.
    """
    killpg(pgid, signal.SIGTERM)
    try:
        await _done_within(gone, grace)
    finally:
        # Also on a second cancellation during the grace period: kill now, then propagate.
        killpg(pgid, signal.SIGKILL)
    if kill_wait > 0:
        await _done_within(gone, kill_wait)


async def _done_within(future: asyncio.Future[None], timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``future``, never cancelling it; whether it is done.

    ``asyncio.wait([future], timeout=...)`` without its set, coroutine and per-future
    bookkeeping: this runs twice for each of thousands of children a second.
    """
    if future.done():
        return True
    wake: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_done(_: object = None) -> None:
        if not wake.done():
            wake.set_result(None)

    future.add_done_callback(on_done)
    timer = asyncio.get_running_loop().call_later(timeout, on_done)
    try:
        await wake
    finally:
        timer.cancel()
        future.remove_done_callback(on_done)
    return future.done()


async def run_child(
    argv: Sequence[bytes],
    *,
    env: Mapping[bytes, bytes],
    cwd: str | None,
    timeout: float,
    grace: float,
    on_line: Callable[[int, bytes], None],
    spawner: Spawner = spawn_exec,
    popen_kwargs: Mapping[str, Any] | None = None,
    capture: Collection[int] = (_STDOUT, _STDERR),
) -> ChildExit:
    """Run ``argv`` to completion in a new session, stdin from /dev/null, output by line.

    Args:
        argv: the program (searched in ``env``'s PATH when it has no slash) and arguments.
        env: the complete environment (bytes -> bytes).
        cwd: working directory, ``None`` for the daemon's.
        timeout: seconds the child may run before its process group gets SIGTERM.
        grace: seconds between SIGTERM and SIGKILL to the process group.
        on_line: called with (1 for stdout or 2 for stderr, line bytes without newline).
        spawner: see :data:`Spawner`.
        popen_kwargs: the child's identity, as subprocess.Popen's ``user``, ``group``,
            ``extra_groups``.
        capture: the streams (1, 2) read and passed to ``on_line``; the others go to
            /dev/null.
    Returns:
        a :class:`ChildExit`.
    Raises:
        OSError, subprocess.SubprocessError: the child could not be started (ENOENT,
            EACCES, E2BIG, a failed setuid(2), ...).
        asyncio.CancelledError: cancelled; the process group was stopped first (SIGTERM,
            ``grace`` seconds, SIGKILL).
    """
    protocol = _ChildProtocol(on_line)
    transport, _ = await spawner(
        lambda: protocol, *argv, env=env, cwd=cwd, capture=capture, **(popen_kwargs or {})
    )
    pgid = transport.get_pid()
    timed_out = False
    try:
        if not await _done_within(protocol.exited, timeout):
            timed_out = True
            await _stop_group(pgid, protocol.exited, grace)
        await _done_within(protocol.finished, DRAIN_AFTER_EXIT)  # usually done: EOF came
    except asyncio.CancelledError:
        if not protocol.exited.done():
            await _stop_group(pgid, protocol.exited, grace)
        elif not protocol.finished.done():
            # Cancelled in the drain window: the child is gone, but a member of its group
            # (a background grandchild) still holds its output. Stopping the action stops
            # the group; whether it went is told by the pipes closing.
            await _stop_group(pgid, protocol.finished, grace, kill_wait=0)
        raise
    finally:
        _close_when_exited(transport, protocol)
    if isinstance(transport, ChildTransport) and (error := transport.start_error()) is not None:
        raise error  # its program never ran: as a start that failed at once
    return ChildExit(transport.get_returncode(), timed_out)


def _close_when_exited(transport: asyncio.SubprocessTransport, protocol: _ChildProtocol) -> None:
    """Close the pipes, flushing partial lines; defer until the child has been reaped.

    Closing a transport whose child is still running makes asyncio poll (waitpid) and kill
    it behind the child watcher's back; after the exit it only closes the pipes.
    """

    def close(_: object = None) -> None:
        transport.close()
        protocol.flush(_STDOUT)
        protocol.flush(_STDERR)

    if protocol.exited.done():
        close()
    else:
        protocol.exited.add_done_callback(close)
