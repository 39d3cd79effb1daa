"""The child spawner against real children: PATH search, signals, inherited fds, each way
of starting one.

``spawn_exec`` starts a child with the C helper (clone + execve, fswatchd/actions/_clone.c)
when no cwd/user/group is set, with os.posix_spawn there when the helper was not built, and
with subprocess.Popen when a cwd/user/group is set; every test that can runs on all three
(``ALL_STARTS``: the ``cwd`` fixture selects the way and gives the cwd that takes it).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import functools
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from child_support import (
    ExitProtocol,
    RecordingSpawner,
    children,
    loop_until,
    proc_state,
    process_gone,
)

from fswatchd.actions import spawn, transport
from fswatchd.actions.process import ChildExit, Spawner, run_child
from fswatchd.actions.spawn import cloexec_inherited_fds, find_program

ALL_STARTS = pytest.mark.parametrize("cwd", ["clone", "posix_spawn", "popen"], indirect=True)


@pytest.fixture
def cwd(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str | None:
    """The ``cwd`` that makes the spawner start children the way ``request.param`` names:
    ``clone`` (the C helper; it must be built), ``posix_spawn`` (as without the helper),
    ``popen`` (a cwd: subprocess.Popen)."""
    if request.param == "clone":
        assert spawn._clone_spawn is not None, "fswatchd/actions/_clone.c was not built"
    elif request.param == "posix_spawn":
        monkeypatch.setattr(spawn, "_clone_spawn", None)
    return "/" if request.param == "popen" else None


async def run(argv: list[bytes], env: dict[bytes, bytes], cwd: str | None) -> list[bytes]:
    """Run argv to completion; its stdout lines. Fails the test on a non-zero exit."""
    out: list[bytes] = []
    result = await run_child(
        argv,
        env=env,
        cwd=cwd,
        timeout=30,
        grace=1,
        on_line=lambda fd, line: out.append(line) if fd == 1 else None,
    )
    assert result == ChildExit(0, False), out
    return out


def kind_of_fd(n: int) -> str:
    """Shell text printing on stderr what the shell's fd ``n`` is: pipe, /dev/null, other.

    ``[`` is a builtin, so /dev/fd is the shell's own; ``readlink /proc/$$/fd/1 >&2``
    would not do: dash applies the redirection to itself before running the command.
    """
    return (
        f"if [ -p /dev/fd/{n} ]; then echo pipe >&2; "
        f"elif [ /dev/fd/{n} -ef /dev/null ]; then echo /dev/null >&2; else echo other >&2; fi"
    )


def sh(script: str) -> list[bytes]:
    return [b"/bin/sh", b"-c", script.encode()]


@ALL_STARTS
async def test_sigpipe_and_sigxfsz_are_at_their_defaults(cwd: str | None) -> None:
    """Python ignores SIGPIPE; the child must not inherit that (``yes | head`` would hang)."""
    [line] = await run(sh("grep ^SigIgn: /proc/self/status"), {}, cwd)
    ignored = int(line.split()[1], 16)
    assert not ignored & (1 << (signal.SIGPIPE - 1))
    assert not ignored & (1 << (signal.SIGXFSZ - 1))


@ALL_STARTS
async def test_stdin_is_dev_null_and_a_new_session(cwd: str | None) -> None:
    """1. stdin reads /dev/null. 2. The child leads its own session and process group."""
    script = "readlink /proc/self/fd/0; ps -o sid= -o pgid= -p $$; echo $$"
    devnull, ids, pid = await run(sh(script), {b"PATH": b"/usr/bin:/bin"}, cwd)
    assert devnull == b"/dev/null"
    assert ids.split() == [pid, pid]


@ALL_STARTS
async def test_no_inherited_fd_reaches_the_child(cwd: str | None) -> None:
    """1. An fd this process holds inheritable (as a caller's leak would be).
    2. cloexec_inherited_fds() marks it; the child does not have it.
    """
    r, w = os.pipe()
    os.set_inheritable(w, True)
    try:
        assert cloexec_inherited_fds() >= 1
        assert not os.get_inheritable(w)
        script = f"test -e /proc/$$/fd/{w} && echo open || echo closed"
        assert await run(sh(script), {}, cwd) == [b"closed"]
        # The control: unmarked, clone and posix_spawn pass it on (Popen's close_fds does not).
        os.set_inheritable(w, True)
        assert await run(sh(script), {}, cwd) == [b"open" if cwd is None else b"closed"]
    finally:
        os.close(r)
        os.close(w)


async def test_program_is_searched_in_the_childs_path(tmp_path: Path) -> None:
    """A bare name is found in the PATH of the child's environment, not the daemon's."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    prog = bindir / "hello-fswatchd"
    prog.write_text("#!/bin/sh\necho found\n")
    prog.chmod(0o755)
    env = {b"PATH": b"/nonexistent:" + os.fsencode(bindir)}
    assert find_program(b"hello-fswatchd", env) == os.fsencode(prog)
    assert await run([b"hello-fswatchd"], env, None) == [b"found"]


@pytest.mark.parametrize(
    ("mode", "error"),
    [(None, FileNotFoundError), (0o644, PermissionError)],
    ids=["missing", "not-executable"],
)
def test_program_not_found_or_not_executable(
    tmp_path: Path, mode: int | None, error: type[OSError]
) -> None:
    """execvpe's errors: ENOENT when nowhere in PATH, EACCES when found but not executable."""
    if mode is not None:
        (tmp_path / "prog").write_text("#!/bin/sh\n")
        (tmp_path / "prog").chmod(mode)
    with pytest.raises(error):
        find_program(b"prog", {b"PATH": os.fsencode(tmp_path)})


@ALL_STARTS
@pytest.mark.parametrize("case", ["not-a-program", "argument-too-long"])
async def test_what_execve_refuses_is_a_failed_start(
    tmp_path: Path, cwd: str | None, case: str
) -> None:
    """1. An executable file with no ``#!`` line passes the PATH search, and execve(2)
    refuses it (ENOEXEC); so it does an argument over the kernel's 128 KiB per string
    (E2BIG). 2. run_child raises that OSError on every way of starting: the C helper learns
    it after the child exited 127, the others at once. 3. No child is left."""
    if case == "not-a-program":
        prog = tmp_path / "prog"
        prog.write_text("not a program\n")
        prog.chmod(0o755)
        argv, code = [os.fsencode(prog)], errno.ENOEXEC
    else:
        argv, code = [b"/bin/true", b"x" * 200_000], errno.E2BIG
    with pytest.raises(OSError) as raised:
        await run(argv, {}, cwd)
    assert raised.value.errno == code
    assert children() == []


async def test_a_group_signal_right_after_the_start_reaches_the_child() -> None:
    """1. 100 times: a child (sleep 1000) is started and its group gets SIGKILL at once,
    with the killpg that stopping an action uses. The C helper does not wait for the
    child's setsid(2), so the group often does not exist yet. 2. Each child is killed all
    the same (the child alone, by its pid): none is left running, each exits by SIGKILL."""
    spawner = spawn.ChildSpawner()
    for _ in range(100):
        protocol = ExitProtocol()
        started, _ = await spawner(
            lambda p=protocol: p, b"sleep", b"1000", env={b"PATH": b"/bin"}, capture=()
        )
        assert transport.killpg(started.get_pid(), signal.SIGKILL)
        await asyncio.wait_for(protocol.exited, 10)
        assert started.get_returncode() == -signal.SIGKILL
    assert children() == []


@ALL_STARTS
async def test_a_stream_not_captured_is_dev_null(cwd: str | None) -> None:
    """capture=(2,): fd 1 is /dev/null, fd 2 the pipe whose lines reach on_line."""
    err: list[bytes] = []
    result = await run_child(
        sh(f"{kind_of_fd(1)}; {kind_of_fd(2)}"),
        env={},
        cwd=cwd,
        timeout=30,
        grace=1,
        on_line=lambda fd, line: err.append(line) if fd == 2 else None,
        capture=(2,),
    )
    assert result == ChildExit(0, False)
    assert err == [b"/dev/null", b"pipe"]


def _epoll_sets() -> int:
    """How many epoll instances this process holds open (/proc/self/fd links)."""
    count = 0
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(FileNotFoundError):  # the listing's own fd, closed by now
            count += os.readlink(f"/proc/self/fd/{name}") == "anon_inode:[eventpoll]"
    return count


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A FIFO the children wait on, and the test's fd to open it: ``os.write(fd, b"go\\n" *
    n)`` lets n children through. The test holds it open for writing, so a child's open()
    never blocks; each child's ``read`` (one byte at a time in sh) takes one line."""
    path = tmp_path / "gate"
    os.mkfifo(path)
    fd = os.open(path, os.O_RDWR)
    yield path, fd
    os.close(fd)


def _start_gated(
    n: int,
    script: str,
    on_line: Callable[[int, int, bytes], None],
    spawner: Spawner,
    cwd: str | None = None,
) -> list[asyncio.Task[ChildExit]]:
    """Start ``n`` children running ``sh -c script sh K`` (K = 0 .. n-1) through
    ``spawner``; ``on_line(K, fd, line)`` gets their output."""
    return [
        asyncio.create_task(
            run_child(
                [b"/bin/sh", b"-c", script.encode(), b"sh", str(k).encode()],
                env={},
                cwd=cwd,
                timeout=30,
                grace=1,
                on_line=functools.partial(on_line, k),
                spawner=spawner,
            )
        )
        for k in range(n)
    ]


async def test_children_share_one_epoll_set_closed_after_the_last(
    gate: tuple[Path, int],
) -> None:
    """1. Children of one ChildSpawner running together have their pidfds and pipes in one
    epoll set: one more epoll instance in the process, whatever their number. 2. Each gets
    its own output and exit status. 3. The set is closed once the last child is done."""
    spawner = spawn.ChildSpawner()
    before = _epoll_sets()
    path, gate_fd = gate
    n = 5
    lines: dict[int, list[bytes]] = {}
    runs = _start_gated(
        n,
        f"read x < {path}; echo out$1; exit $1",
        lambda k, _fd, line: lines.setdefault(k, []).append(line),
        spawner,
    )
    # pidfd, stdout and stderr of each child, all in the one set
    await loop_until(lambda: spawner.watched_fds == 3 * n or None, 10)
    assert _epoll_sets() == before + 1
    os.write(gate_fd, b"go\n" * n)
    results = await asyncio.wait_for(asyncio.gather(*runs), 30)
    assert [r.returncode for r in results] == list(range(n))
    assert lines == {k: [f"out{k}".encode()] for k in range(n)}
    assert spawner.watched_fds == 0
    assert _epoll_sets() == before


@ALL_STARTS
async def test_more_children_end_at_once_than_one_wake_up_takes(
    gate: tuple[Path, int], cwd: str | None
) -> None:
    """1. Twice as many children as ChildFds takes ready fds per wake-up wait on one gate.
    2. The gate opens and the test holds the loop until every child has exited: at its next
    wake-up all their pidfds and pipes are ready at once. 3. Each child's output and exit
    status still arrive, and the set is closed after the last."""
    path, gate_fd = gate
    n = 2 * transport._MAX_READY
    lines: dict[int, list[tuple[int, bytes]]] = {}
    spawner = RecordingSpawner()
    pids = spawner.pids
    runs = _start_gated(
        n,
        f"read x < {path}; echo out$1; echo err$1 >&2; exit $1",
        lambda k, fd, line: lines.setdefault(k, []).append((fd, line)),
        spawner,
        cwd,
    )
    await loop_until(lambda: len(pids) == n or None, 10)
    os.write(gate_fd, b"go\n" * n)
    for pid in pids:  # blocking: the loop does not run until all have exited
        assert process_gone(pid, deadline=10), f"child {pid} still running after 10 s"
    results = await asyncio.wait_for(asyncio.gather(*runs), 30)
    assert [r.returncode for r in results] == list(range(n))
    # the two pipes of one child are read in the order epoll reports them
    assert {k: sorted(got) for k, got in lines.items()} == {
        k: [(1, f"out{k}".encode()), (2, f"err{k}".encode())] for k in range(n)
    }
    assert spawner.watched_fds == 0


# Attaches to a pid as `strace -p` does (PTRACE_SEIZE), prints "seized", and holds it until
# its stdin closes (at most 20 s): meanwhile the tracee's exit is reported to it, not to us.
TRACER = r"""
import ctypes, select, sys
libc = ctypes.CDLL(None, use_errno=True)
PTRACE_SEIZE = 0x4206
if libc.ptrace(PTRACE_SEIZE, int(sys.argv[1]), None, None) != 0:
    print("refused", ctypes.get_errno(), flush=True)
    sys.exit(1)
print("seized", flush=True)
select.select([sys.stdin], [], [], 20)
"""


@ALL_STARTS
async def test_a_traced_childs_exit_does_not_block_the_loop(
    gate: tuple[Path, int], cwd: str | None
) -> None:
    """1. A child waits on a gate; a tracer attaches to it (ptrace(2), as strace -p does).
    2. The child exits: a zombie, but the tracer sees its exit first and we cannot reap it
    yet. The loop keeps running (no waitpid(2) blocking it) and run_child keeps waiting.
    3. The tracer lets go: the child is reaped, with its exit status.
    """
    path, gate_fd = gate
    spawner = RecordingSpawner()
    pids = spawner.pids
    tracer: subprocess.Popen[bytes] | None = None
    run = asyncio.create_task(
        run_child(
            sh(f"read x < {path}; exit 4"),
            env={},
            cwd=cwd,
            timeout=30,
            grace=1,
            on_line=lambda fd, line: None,
            spawner=spawner,
        )
    )
    try:
        [pid] = await loop_until(lambda: pids or None, 10)
        tracer = subprocess.Popen(
            [sys.executable, "-c", TRACER, str(pid)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert tracer.stdout is not None
        answer = tracer.stdout.readline()
        if answer != b"seized\n":
            pytest.skip(f"ptrace(2) not allowed here: {answer!r}")
        os.write(gate_fd, b"go\n")
        await loop_until(lambda: proc_state(pid) == "Z" or None, 10)
        # The loop took the exit: the pidfd left the set (only the exit handler removes
        # it; the pipes closed at their EOF), and the reap was tried and put off.
        await loop_until(lambda: spawner.watched_fds == 0 or None, 10)
        assert not run.done()
        assert tracer.stdin is not None
        tracer.stdin.close()
        assert await asyncio.wait_for(run, 10) == ChildExit(4, False)
    finally:
        run.cancel()
        if tracer is not None:
            tracer.kill()
            with tracer:  # closes its pipes and reaps it
                pass


def _is_open(fd: int) -> bool:
    """Whether ``fd`` is an open file descriptor of this process (fcntl(2) F_GETFD)."""
    try:
        fcntl.fcntl(fd, fcntl.F_GETFD)
    except OSError:
        return False
    return True


@contextlib.contextmanager
def _fd_numbers_left(n: int) -> Iterator[None]:
    """Lower RLIMIT_NOFILE so that only the ``n`` lowest free fd numbers can be opened."""
    free = [fd for fd in range(4096) if not _is_open(fd)][: n + 1]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (free[n], hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def test_a_child_that_cannot_be_watched_is_killed_and_reaped() -> None:
    """1. RLIMIT_NOFILE leaves one fd number free: the child starts and gets its pidfd, but
    its spawner's epoll set cannot be made (EMFILE). 2. The spawner raises that error.
    3. The child (sleep 1000) is not left running unsupervised: killed and reaped."""
    spawner = spawn.ChildSpawner()
    assert children() == []
    with _fd_numbers_left(1), pytest.raises(OSError) as raised:
        await spawner(
            asyncio.SubprocessProtocol, b"sleep", b"1000", env={b"PATH": b"/bin"}, capture=()
        )
    assert raised.value.errno == errno.EMFILE
    assert children() == []
    assert spawner.watched_fds == 0


async def test_a_second_pipe_that_cannot_be_made_leaves_no_fd() -> None:
    """Three fd numbers free: the stdout pipe is made, the stderr one fails (EMFILE). The
    error is raised, no child is started, and the first pipe is closed (the autouse
    fd-leak check sees it otherwise)."""
    spawner = spawn.ChildSpawner()
    with _fd_numbers_left(3), pytest.raises(OSError) as raised:
        await spawner(asyncio.SubprocessProtocol, b"true", env={b"PATH": b"/bin"})
    assert raised.value.errno == errno.EMFILE
    assert children() == []
