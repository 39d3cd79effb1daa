"""The C helper that starts children (fswatchd/actions/_clone.c), against real children.

What the spawner relies on: argv and environment passed byte-exact; fd 0-2 taken from the
caller's fds, even when those are themselves numbered 0-2; a new session; the named signals
at SIG_DFL and the caller's signal mask kept; a close-on-exec pidfd for the child; a step
that fails in the child reported by its Start once it exited 127; the memory the child
reads kept until it has left it, even when its Start is dropped at once; bad arguments
refused before any clone.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import select
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from child_support import children

_clone = pytest.importorskip("fswatchd.actions._clone")
spawn = _clone.spawn

SH = b"/bin/sh"


@pytest.fixture
def devnull() -> Iterator[int]:
    fd = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    yield fd
    os.close(fd)


def _run(
    argv: list[bytes], env: dict[bytes, bytes], devnull: int, signals: tuple[int, ...] = ()
) -> tuple[int, bytes]:
    """Start argv with stdout and stderr on one pipe; (exit code, everything it wrote)."""
    r, w = os.pipe2(os.O_CLOEXEC)
    try:
        pid, pidfd, _start = spawn(argv[0], argv, env, (devnull, w, w), signals)
    finally:
        os.close(w)
    return _finish(pid, pidfd, r)


def _finish(pid: int, pidfd: int, r: int) -> tuple[int, bytes]:
    """Read ``r`` to its end, reap ``pid``, close ``r`` and ``pidfd``; (exit code, output)."""
    try:
        out = b""
        while chunk := os.read(r, 65536):
            out += chunk
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(r)
        os.close(pidfd)
    return os.waitstatus_to_exitcode(status), out


def test_argv_and_environment_arrive_byte_exact(devnull: int) -> None:
    """Names with a newline, shell metacharacters and bytes that are not UTF-8 reach the
    child's argv and environment unchanged and uninterpreted (/proc/PID/cmdline, environ)."""
    hostile = b"a\nb; rm -rf / $(x) `y` \xff\xfe '\"*"
    argv = [
        SH,
        b"-c",
        b"cat /proc/$$/cmdline; printf '\\001'; cat /proc/$$/environ",
        b"sh",
        hostile,
    ]
    env = {b"HOSTILE": hostile, b"EMPTY": b""}
    code, out = _run(argv, env, devnull)
    assert code == 0
    cmdline, environ = out.split(b"\x01")
    assert cmdline == b"\0".join(argv) + b"\0"
    assert sorted(environ.split(b"\0")[:-1]) == [b"EMPTY=", b"HOSTILE=" + hostile]


@pytest.mark.parametrize(
    ("fds", "out", "err"),
    [((3, 2, 1), b"err\n", b"out\n"), ((3, 1, 2), b"out\n", b"err\n")],
    ids=["swapped", "in-place-close-on-exec"],
)
def test_fds_numbered_below_three(
    tmp_path: Path, fds: tuple[int, int, int], out: bytes, err: bytes
) -> None:
    """In a process whose fd 1 is a pipe and fd 2 a file, both marked close-on-exec:
    1. swapped (stdout <- fd 2, stderr <- fd 1): neither dup2(2) may clobber the other's
    source; 2. in place (fd 1 -> 1, fd 2 -> 2): each is kept and made inheritable (a dup2
    onto itself would leave FD_CLOEXEC set, and the child's output would be lost)."""
    script = (
        "import fcntl, os, sys\n"
        "from fswatchd.actions._clone import spawn\n"
        "os.dup2(os.open(os.devnull, os.O_RDWR), 3)\n"
        "for fd in (1, 2):\n"
        "    fcntl.fcntl(fd, fcntl.F_SETFD, fcntl.FD_CLOEXEC)\n"
        "sh = b'/bin/sh'\n"
        f"pid, pidfd, _ = spawn(sh, [sh, b'-c', b'echo out; echo err >&2'], {{}}, {fds!r}, ())\n"
        "sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))\n"
    )
    stderr = tmp_path / "stderr"
    with stderr.open("wb") as err_file:
        done = subprocess.run(
            [sys.executable, "-c", script],
            stdout=subprocess.PIPE, stderr=err_file, timeout=30, check=False,
        )  # fmt: skip
    assert done.returncode == 0, stderr.read_bytes()
    assert (done.stdout, stderr.read_bytes()) == (out, err)


def test_new_session_and_none_of_our_fds(devnull: int) -> None:
    """The child leads a new session and process group, and holds neither its pidfd nor
    the pipe's read end (both close-on-exec)."""
    r, w = os.pipe2(os.O_CLOEXEC)
    script = b"ps -o sid= -o pgid= -p $$; echo $$; ls /proc/$$/fd"
    try:
        pid, pidfd, _start = spawn(
            SH, [SH, b"-c", script], {b"PATH": b"/usr/bin:/bin"}, (devnull, w, w), ()
        )
    finally:
        os.close(w)
    code, out = _finish(pid, pidfd, r)
    assert code == 0
    ids, shell_pid, *fds = out.splitlines()
    assert ids.split() == [shell_pid, shell_pid] == [str(pid).encode()] * 2
    assert {b"0", b"1", b"2"} <= set(fds)
    assert str(pidfd).encode() not in fds
    assert str(r).encode() not in fds


def test_named_signals_at_default_and_the_mask_kept(devnull: int) -> None:
    """1. This process ignores SIGPIPE and SIGUSR2 and blocks SIGUSR1. 2. The child (grep
    itself: a shell would clear its mask) is started with SIGPIPE to reset: SIGPIPE is at
    its default there, SIGUSR2 still ignored (not named), SIGUSR1 still blocked (the
    caller's mask is the child's). 3. Our own mask is as before."""
    old_usr2 = signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    try:
        code, out = _run(
            [b"/bin/grep", b"-E", b"^Sig(Ign|Blk):", b"/proc/self/status"], {}, devnull,
            (signal.SIGPIPE,),
        )  # fmt: skip
        mask_after = signal.pthread_sigmask(signal.SIG_BLOCK, set())
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        signal.signal(signal.SIGUSR2, old_usr2)
    assert code == 0
    fields = dict(line.split(b":") for line in out.splitlines())
    blocked, ignored = int(fields[b"SigBlk"], 16), int(fields[b"SigIgn"], 16)

    def bit(sig: int) -> int:
        return 1 << (sig - 1)

    assert not ignored & bit(signal.SIGPIPE)
    assert ignored & bit(signal.SIGUSR2)
    assert blocked == sum(bit(sig) for sig in old_mask | {signal.SIGUSR1})
    assert mask_after == old_mask | {signal.SIGUSR1}


def test_the_pidfd_is_close_on_exec_and_turns_readable_at_exit(devnull: int) -> None:
    pid, pidfd, _start = spawn(SH, [SH, b"-c", b"exit 7"], {}, (devnull, devnull, devnull), ())
    try:
        assert fcntl.fcntl(pidfd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
        assert select.select([pidfd], [], [], 10)[0] == [pidfd]
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 7
    finally:
        os.close(pidfd)


def _exit_and_error(pid: int, pidfd: int, start: object) -> tuple[int, int | None]:
    """Reap ``pid`` and close ``pidfd``; (its exit code, ``start.error`` after that)."""
    try:
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(pidfd)
    assert start.released  # type: ignore[attr-defined]
    return os.waitstatus_to_exitcode(status), start.error  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (None, errno.ENOENT),
        ("#!/bin/sh\n", errno.EACCES),  # mode 0644
        ("not a program\n", errno.ENOEXEC),  # mode 0755, no #! line: execve refuses it
    ],
    ids=["missing", "not-executable", "not-a-program"],
)
def test_a_failed_execve_exits_127_with_its_errno_in_the_start(
    tmp_path: Path, devnull: int, make: str | None, code: int
) -> None:
    prog = tmp_path / "prog"
    if make is not None:
        prog.write_text(make)
        prog.chmod(0o644 if code == errno.EACCES else 0o755)
    path = os.fsencode(prog)
    pid, pidfd, start = spawn(path, [path], {}, (devnull, devnull, devnull), ())
    assert _exit_and_error(pid, pidfd, start) == (127, code)


def test_a_failed_dup3_exits_127_with_ebadf(devnull: int) -> None:
    pid, pidfd, start = spawn(SH, [SH, b"-c", b"true"], {}, (devnull, 987654, devnull), ())
    assert _exit_and_error(pid, pidfd, start) == (127, errno.EBADF)


def test_a_started_program_leaves_error_0(devnull: int) -> None:
    pid, pidfd, start = spawn(SH, [SH, b"-c", b"exit 127"], {}, (devnull,) * 3, ())
    assert _exit_and_error(pid, pidfd, start) == (127, 0)  # its own 127, not a failed start


def test_a_start_dropped_at_once_keeps_the_memory_its_child_reads(devnull: int) -> None:
    """1. Each Start is dropped as soon as spawn returns, usually before its child's
    execve, and the heap is churned (the daemon goes on at once). 2. Every child still
    gets its own argument and environment intact: a block freed while its child reads it
    would hand some child another's bytes or garbage."""
    n = 200
    started = []
    for i in range(n):
        r, w = os.pipe2(os.O_CLOEXEC)
        value = b"%d-" % i + b"x" * (i % 97)
        argv = [SH, b"-c", b'printf "%s %s" "$1" "$V"', b"sh", value]
        pid, pidfd, _ = spawn(SH, argv, {b"V": value}, (devnull, w, w), ())
        os.close(w)
        junk = [bytes(1000 + k) for k in range(50)]  # reuse what a wrongly freed block held
        del junk
        started.append((pid, pidfd, r, value))
    for pid, pidfd, r, value in started:
        assert _finish(pid, pidfd, r) == (0, value + b" " + value)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((b"/bin/\0sh", [SH], {}), ValueError),
        (("/bin/sh", [SH], {}), ValueError),
        ((SH, [SH, b"a\0b"], {}), ValueError),
        ((SH, [SH, "str"], {}), TypeError),
        ((SH, 5, {}), TypeError),
        ((SH, [SH], {b"A=B": b"c"}), ValueError),
        ((SH, [SH], {b"": b"c"}), ValueError),
        ((SH, [SH], {b"A": b"c\0d"}), ValueError),
        ((SH, [SH], {"A": b"c"}), TypeError),
        ((SH, [SH], [(b"A", b"c")]), TypeError),
        ((SH, [], {}), ValueError),
    ],
    ids=[
        "nul-in-path", "str-path", "nul-in-argv", "str-in-argv", "argv-not-a-sequence",
        "equals-in-name", "empty-name", "nul-in-value", "str-name", "env-not-a-dict", "empty-argv",
    ],
)  # fmt: skip
def test_bad_arguments_are_refused_before_any_child(
    devnull: int, args: tuple[object, ...], error: type[Exception]
) -> None:
    before = children()
    with pytest.raises(error):
        spawn(*args, (devnull, devnull, devnull), ())
    assert children() == before


@pytest.mark.parametrize(
    ("fds", "signals", "error"),
    [
        ((0, 1), (), TypeError),
        ((0, 1, "2"), (), TypeError),
        ([0, 1, 2], (), TypeError),
        ((0, 1, 2), (0,), ValueError),
        ((0, 1, 2), (65,), ValueError),
        ((0, 1, 2), (2**40 + signal.SIGPIPE,), ValueError),
        ((0, 1, 2), (signal.SIGKILL,), ValueError),
        ((0, 1, 2), (signal.SIGSTOP,), ValueError),
        ((0, 1, 2), (32,), ValueError),
        ((0, 1, 2), ("13",), TypeError),
    ],
    ids=[
        "two-fds", "str-fd", "fds-list", "signal-0", "signal-65", "signal-huge",
        "sigkill", "sigstop", "glibc-internal", "str-signal",
    ],
)  # fmt: skip
def test_bad_fds_or_signals_are_refused(
    fds: tuple[object, ...], signals: tuple[object, ...], error: type[Exception]
) -> None:
    before = children()
    with pytest.raises(error):
        spawn(SH, [SH], {}, fds, signals)
    assert children() == before


def test_a_list_changed_while_it_is_read_cannot_crash_it(tmp_path: Path) -> None:
    """A signal number whose ``__index__`` empties the list it is in, and an argv list
    emptied the same way: each is read from a copy (in a process of its own: the old
    failure was a segfault)."""
    script = (
        "import os, signal\n"
        "from fswatchd.actions._clone import spawn\n"
        "null = os.open(os.devnull, os.O_RDWR)\n"
        "class Sig:\n"
        "    def __init__(self, box): self.box = box\n"
        "    def __index__(self): self.box.clear(); return int(signal.SIGPIPE)\n"
        "sigs = []\n"
        "sigs += [Sig(sigs), signal.SIGXFSZ]\n"
        "pid, pidfd, _start = spawn(b'/bin/true', [b'/bin/true'], {}, (null, null, null), sigs)\n"
        "assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, timeout=30, check=False
    )
    assert (done.returncode, done.stdout) == (0, b"ok\n"), done.stderr


# Spawns /bin/true in a loop while a thread sends SIGUSR1 to the process's own group (as
# Ctrl-C reaches a daemon run in a terminal). Python's C-level handler writes the signal's
# number to the wakeup fd at each delivery, and asyncio runs the Python handler once per
# byte read: the bytes are what the daemon's loop would count.
_GROUP_SIGNALS = r"""
import ctypes, os, signal, sys, threading, time
from fswatchd.actions._clone import spawn
sent, sig = int(sys.argv[1]), int(sys.argv[2])
if sys.argv[3:] == ["reserve"]:  # as a library reserving a real-time signal does
    libc = ctypes.CDLL(None)
    assert libc.__libc_allocate_rtsig(1) == sig, "signal not the first real-time one"
r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
signal.set_wakeup_fd(w)
signal.signal(sig, lambda sig, frame: None)
null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
def send():
    for _ in range(sent):
        os.killpg(0, sig)
        time.sleep(0.002)
sender = threading.Thread(target=send)
sender.start()
deadline = time.monotonic() + 30
while sender.is_alive() and time.monotonic() < deadline:
    pid, pidfd, _start = spawn(b"/bin/true", [b"/bin/true"], {}, (null, null, null), ())
    os.close(pidfd)
    os.waitpid(pid, 0)
sender.join(30)
print(os.read(r, 65536).count(bytes([sig])))
"""


@pytest.mark.parametrize(
    "sig_args",
    [[str(int(signal.SIGUSR1))], [str(signal.SIGRTMIN), "reserve"]],
    ids=["SIGUSR1", "real-time-signal-reserved-by-a-library"],
)
def test_a_group_signal_before_setsid_is_not_handled_twice(sig_args: list[str]) -> None:
    """1. A process in a session of its own starts children in a loop while its group gets
    a caught signal 200 times (SIGUSR1; glibc's first real-time signal after a library
    reserved it, which moves SIGRTMIN past it). 2. A child that is still in the group when
    one arrives gets it too, blocked until just before execve; its handler must be SIG_DFL
    by then, else Python's C-level handler runs in the child, in the parent's memory, and
    writes to the parent's wakeup fd. 3. The wakeup fd got at most one byte per signal
    sent."""
    sent = 200
    done = subprocess.run(
        [sys.executable, "-c", _GROUP_SIGNALS, str(sent), *sig_args],
        capture_output=True, timeout=60, check=False, start_new_session=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert 0 < int(done.stdout) <= sent


_CALL = re.compile(r"\s(?:call|callq|bl|b|jmp|jmpq)\s+[0-9a-f]+ <([^>]+)>")
_INDIRECT = re.compile(r"\s(?:call|callq|jmp|jmpq)\s+\*|\s(?:blr|br)\s")


def test_the_child_calls_no_library_function() -> None:
    """1. The built helper is disassembled (objdump, from the binutils every build with a
    C compiler has). 2. From ``child_main``, every function it can reach in the helper is
    followed. 3. None calls through the PLT or a pointer: the child runs on the daemon's
    memory and thread-local storage while the daemon goes on, so a library function (its
    errno, a lazy binding, a lock) would act on the daemon's state."""
    objdump = shutil.which("objdump")
    assert objdump is not None, "objdump (binutils) not found"
    listing = subprocess.run(
        [objdump, "-d", "--no-show-raw-insn", _clone.__file__],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    bodies: dict[str, list[str]] = {}
    current: list[str] = []
    for line in listing.splitlines():
        if header := re.match(r"[0-9a-f]+ <([^>]+)>:$", line):
            current = bodies.setdefault(header.group(1), [])
        else:
            current.append(line)
    assert "child_main" in bodies, "no child_main symbol in the helper"
    seen, todo, outside = set(), ["child_main"], []
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for line in bodies.get(name.split("+")[0], []):
            if _INDIRECT.search(line):
                outside.append(f"{name}: {line.strip()}")
            elif call := _CALL.search(line):
                target = call.group(1)
                if "@" in target or target.split("+")[0] not in bodies:
                    outside.append(f"{name}: {line.strip()}")
                elif target.split("+")[0] != name:
                    todo.append(target.split("+")[0])
    assert outside == []
