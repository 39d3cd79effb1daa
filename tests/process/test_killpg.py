"""Signals to a child's process group right after its start, against real children.

The C helper returns before the child's setsid(2): a killpg(2) of the child's pid can find
no group yet, and the child itself is signalled instead (kill(2)). The daemon's thread can
be preempted between those two calls while the child makes its group and starts others in
it; they must get the signal too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest
from child_support import ExitProtocol

from fswatchd.actions import spawn, transport

pytestmark = pytest.mark.skipif(
    spawn._clone_spawn is None, reason="fswatchd/actions/_clone.c was not built"
)

#: Seconds any one step may take.
DEADLINE = 10.0


@contextlib.contextmanager
def _one_cpu() -> Iterator[None]:
    """This thread, and the children it starts, on one CPU: a child started does not run
    until this thread waits, so it can be stopped before its first instruction."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


async def _stopped_before_setsid(
    spawner: spawn.ChildSpawner, fifo: Path
) -> tuple[asyncio.SubprocessTransport, ExitProtocol]:
    """A shell started by ``spawner`` and stopped (SIGSTOP) before its setsid(2): still in
    our process group, so its own group does not exist. Once resumed it starts ``sleep
    1000`` in the background and writes that pid to ``fifo``."""
    script = b'sleep 1000 & echo $! > "$FIFO"; wait'
    env = {b"PATH": b"/bin:/usr/bin", b"FIFO": os.fsencode(fifo)}
    for _ in range(20):
        protocol = ExitProtocol()
        started, _ = await spawner(lambda p=protocol: p, b"sh", b"-c", script, env=env, capture=())
        pid = started.get_pid()
        os.kill(pid, signal.SIGSTOP)
        os.waitid(os.P_PID, pid, os.WSTOPPED | os.WNOWAIT)  # returns once it is stopped
        if os.getpgid(pid) != pid:
            return started, protocol
        os.kill(pid, signal.SIGKILL)  # it ran up to its setsid: try again
        await asyncio.wait_for(protocol.exited, DEADLINE)
    raise AssertionError("no child could be stopped before its setsid")


async def test_a_group_made_between_the_killpg_and_the_kill_gets_the_sigkill(
    tmp_path: Path,
) -> None:
    """1. A child is stopped before its setsid(2), so killpg(2) of its pid finds no group.
    2. transport.killpg(pid, SIGKILL) is held just before its kill(2) of the child (a
    profile hook at that call, as a preemption of the daemon's thread would hold it): the
    child is resumed meanwhile, makes its group, execs a shell, which starts a ``sleep``
    in the background. 3. The kill goes on. 4. The ``sleep``, in the child's group, is
    killed too, not left running after the stop that was meant for the whole group."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    spawner = spawn.ChildSpawner()
    grandchild: list[int] = []
    pidfds: list[int] = []
    try:
        with _one_cpu():
            started, protocol = await _stopped_before_setsid(spawner, fifo)
        pid = started.get_pid()

        def hold_the_kill(frame: FrameType, event: str, arg: object) -> None:
            if event != "c_call" or arg is not os.kill or grandchild:
                return
            os.kill(pid, signal.SIGCONT)
            assert select.select([reader], [], [], DEADLINE)[0], "the shell wrote no pid"
            grandchild.append(int(os.read(reader, 64)))
            pidfds.append(os.pidfd_open(grandchild[0]))

        sys.setprofile(hold_the_kill)
        try:
            assert transport.killpg(pid, signal.SIGKILL)
        finally:
            sys.setprofile(None)
        assert grandchild, "killpg found the group at once: the kill(2) was not reached"
        await asyncio.wait_for(protocol.exited, DEADLINE)
        assert started.get_returncode() == -signal.SIGKILL
        assert select.select(pidfds, [], [], DEADLINE)[0], "the sleep of its group survived"
    finally:
        for fd in pidfds:
            # Gone already when the test passed (killed, and reaped by whoever adopted it).
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(fd, signal.SIGKILL)
            os.close(fd)
        os.close(reader)
