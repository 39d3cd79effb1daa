"""Watch started children from the event loop: their pidfds and output pipes in one epoll
set (:class:`ChildFds`), and a transport per child that feeds its protocol
(:class:`ChildTransport`). fswatchd/actions/spawn.py starts the children.

The children's pidfds and pipes are not given to ``loop.add_reader`` one by one: those of
the children a :class:`~fswatchd.actions.spawn.ChildSpawner` started go into one epoll set
of its own, which is the only fd of theirs the loop watches. asyncio's add_reader and
remove_reader cost some 15 µs of Python each (a handle, a selector key, the selector's
maps); at thousands of children a second, two fds each, that was an eighth of the daemon's
CPU per child. ``select.epoll.register`` is one C call. See epoll(7), pidfd_open(2).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import select
import signal
from collections.abc import Callable, Mapping

__all__ = ["ChildFds", "ChildTransport", "ExecError", "kill_child", "kill_running", "killpg"]

#: Bytes read per wake-up of a pipe (asyncio's pipe transports read 256 KiB).
_READ_SIZE = 256 * 1024
#: Ready fds taken from the children's epoll set per wake-up of the loop.
_MAX_READY = 64
#: Seconds between attempts to reap a child that exited but is held by a tracer.
_REAP_RETRY = 0.05
#: Pids of the children of every transport, until reaped. Each leads its own process
#: group, whose id it holds until reaped (a zombie's pid is not reused).
_RUNNING: set[int] = set()
#: ``exec_error()`` of a child whose execve(2) may still be to come when it is watched:
#: once the child has exited, the OSError of the step that failed in it, or None.
ExecError = Callable[[], OSError | None]


def killpg(pgid: int, sig: int) -> bool:
    """killpg(2), ignoring a group that is already gone (ESRCH).

    The group of a child a transport watches and has not reaped goes through
    :func:`kill_child`: the child may not have made it yet.

    Returns:
        True if the group (or that child) was signalled.
    """
    if pgid in _RUNNING:
        return kill_child(pgid, sig)
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


def kill_child(pid: int, sig: int) -> bool:
    """Send ``sig`` to the process group a started child leads, or to the child itself
    while that group does not exist yet; the child must not be reaped yet (until then its
    pid cannot be another process's).

    The child's setsid(2) comes just before its execve(2), which the start does not wait
    for: killpg(2) of its pid fails (ESRCH) until then, and kill(2) reaches the child, alone
    in its group to be (it has run nothing yet). Should the child make its group between
    the two calls (this thread preempted) and start others in it, a second killpg(2) gives
    them ``sig`` too; the child may then get it twice.

    Returns:
        True if the group or the child was signalled.
    """
    try:
        os.killpg(pid, sig)
        return True
    except ProcessLookupError:
        pass
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)
    return True


def kill_running(sig: int = signal.SIGKILL) -> int:
    """Send ``sig`` to the process group of every child a :class:`ChildTransport` watches
    and has not reaped (:func:`kill_child`); for an exit that will not wait for them.

    Returns:
        the number of process groups (or children not yet in one) signalled.
    """
    return sum(kill_child(pid, sig) for pid in _RUNNING)


class ChildFds:
    """The fds of running children (pidfds, output pipes) in one epoll set (epoll(7)).

    The set's own fd is registered with the event loop once, with ``loop.add_reader``; when
    it turns readable, the ready fds are taken with a non-blocking ``epoll_wait`` and their
    callbacks run, in the loop's thread. Level-triggered: an fd left unread is reported
    again on the next wake-up. Closed (and taken off the loop) when its last fd is removed.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        """Args: loop: the event loop whose thread runs the callbacks.

        Raises:
            OSError: epoll_create1(2) failed (EMFILE, ENFILE, ENOMEM).
        """
        self.loop = loop
        self._epoll = select.epoll()  # close-on-exec: children never see it
        self._callbacks: dict[int, Callable[[], None]] = {}
        loop.add_reader(self._epoll.fileno(), self._on_ready)

    def __len__(self) -> int:
        """The number of fds in the set."""
        return len(self._callbacks)

    @property
    def closed(self) -> bool:
        """True once the last fd was removed: the set cannot be used again."""
        return self._epoll.closed

    def add(self, fd: int, callback: Callable[[], None]) -> None:
        """Call ``callback()`` whenever ``fd`` is readable (EPOLLIN), until :meth:`remove`.

        Raises:
            OSError: epoll_ctl(2) failed (ENOMEM; EEXIST: ``fd`` is already added); a set
                left empty by it is closed, as after the last :meth:`remove`.
        """
        try:
            self._epoll.register(fd, select.EPOLLIN)
        except OSError:
            self._close_if_empty()
            raise
        self._callbacks[fd] = callback

    def remove(self, fd: int) -> None:
        """Stop watching ``fd`` (call it before closing ``fd``); the last one closes the set."""
        del self._callbacks[fd]
        self._epoll.unregister(fd)
        self._close_if_empty()

    def _close_if_empty(self) -> None:
        """Take the set off the loop and close it once it holds no fd."""
        if not self._callbacks:
            self.loop.remove_reader(self._epoll.fileno())
            self._epoll.close()

    def _on_ready(self) -> None:
        callbacks = self._callbacks
        for fd, _ in self._epoll.poll(0, _MAX_READY):
            # An fd removed by an earlier callback of this batch is skipped. None of them
            # starts a child (that happens in tasks, on later turns of the loop), so a
            # number cannot be reused within a batch.
            callback = callbacks.get(fd)
            if callback is not None:
                callback()


class ChildTransport(asyncio.SubprocessTransport):
    """One child: feeds ``protocol`` its output and exit, as asyncio's transport would.

    The protocol gets ``pipe_data_received(fd, data)`` and ``pipe_connection_lost(fd,
    None)`` for fd 1 and 2, ``process_exited()`` once the child is reaped, then
    ``connection_lost(None)`` once it has exited and both pipes are closed. Only
    ``get_pid``, ``get_returncode`` and ``close`` are offered.
    """

    def __init__(
        self,
        pid: int,
        pidfd: int,
        pipes: Mapping[int, int],
        protocol: asyncio.SubprocessProtocol,
        reap: Callable[[bool], int | None],
        *,
        fds: ChildFds,
        exec_error: ExecError | None = None,
    ) -> None:
        """Args: the child's pid, its pidfd, {1: stdout read end, 2: stderr read end},
        the protocol, ``reap(block)`` -> exit code (``-N`` for signal N), or ``None``
        when ``block`` is false and the child cannot be reaped yet, the set its fds
        join, and for a child whose execve(2) may still be to come, its
        :data:`ExecError` (asked once it is reaped: see :meth:`start_error`).

        Raises:
            OSError: an fd could not join ``fds`` (those that did are taken out again).
        """
        super().__init__()
        self._loop = asyncio.get_running_loop()
        self._pid = pid
        self._pidfd: int | None = pidfd
        self._pipes = dict(pipes)
        self._protocol = protocol
        self._reap = reap
        self._exec_error = exec_error
        self._start_error: OSError | None = None
        self._returncode: int | None = None
        self._lost = False
        self._fds = fds
        watched = {pidfd: self._on_exit}
        for number, fd in self._pipes.items():
            watched[fd] = functools.partial(self._on_output, number, fd)
        added: list[int] = []
        try:
            for fd, callback in watched.items():
                fds.add(fd, callback)
                added.append(fd)
        except BaseException:
            for fd in added:
                fds.remove(fd)
            raise
        _RUNNING.add(pid)

    def get_pid(self) -> int:
        """The child's pid (and process group id)."""
        return self._pid

    def get_returncode(self) -> int | None:
        """Exit status, ``-N`` if killed by signal N, ``None`` until reaped."""
        return self._returncode

    def start_error(self) -> OSError | None:
        """Once reaped, the OSError of a step that failed in the child before its program
        ran (execve(2) ENOENT, EACCES, E2BIG ...; it then exited 127); else None."""
        return self._start_error

    def is_closing(self) -> bool:
        """True once both pipes are closed."""
        return not self._pipes

    def close(self) -> None:
        """Stop reading output (closing the pipes); the child is still reaped when it exits."""
        for number in list(self._pipes):
            self._close_pipe(number)

    def _on_output(self, number: int, fd: int) -> None:
        try:
            data = os.read(fd, _READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self._protocol.pipe_data_received(number, data)
        else:
            self._close_pipe(number)

    def _close_pipe(self, number: int) -> None:
        fd = self._pipes.pop(number)
        self._fds.remove(fd)
        os.close(fd)
        self._protocol.pipe_connection_lost(number, None)
        self._maybe_lost()

    def _on_exit(self) -> None:
        if self._pidfd is not None:
            self._fds.remove(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        returncode = self._reap(False)
        if returncode is None:
            # It exited, but a tracer (ptrace(2): strace -p, gdb) is told first and we
            # can reap it only once the tracer lets go; waitpid(2) would block the loop
            # until then. The pidfd stays readable meanwhile: ask again on a timer.
            self._loop.call_later(_REAP_RETRY, self._on_exit)
            return
        self._returncode = returncode
        _RUNNING.discard(self._pid)
        if self._exec_error is not None:
            self._start_error = self._exec_error()
            self._exec_error = None  # frees the memory the child's start was copied to
        self._protocol.process_exited()
        self._maybe_lost()

    def _maybe_lost(self) -> None:
        if not self._pipes and self._returncode is not None and not self._lost:
            self._lost = True
            self._protocol.connection_lost(None)
