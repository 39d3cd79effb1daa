"""Start a child in its own session and watch it from the event loop: pidfd for the exit, two
pipes for its output, no thread and no asyncio subprocess machinery.

:class:`ChildSpawner` is the :data:`~fswatchd.actions.process.Spawner` of actions (and
:func:`spawn_exec`, one child with a spawner of its own, the default of ``run_child``). When
the action sets no ``cwd``, ``user`` or ``group``, the child is started by a small C helper
(``_clone``, fswatchd/actions/_clone.c: clone(CLONE_VM | CLONE_PIDFD | CLONE_CHILD_CLEARTID),
three dup3(2), setsid(2), execve(2)), which returns without waiting for the child's execve;
a step that fails in the child is learnt when it exits (127), and raised then as the
OSError a failed start raises. Where the helper was not built (it is optional, for a
machine without a C compiler), ``os.posix_spawn`` starts it, which does the same through
glibc with more work in the child, and waits for the execve (CLONE_VFORK). Python 3.11's
posix_spawn has no chdir file action and cannot switch identity, so children that need
those are started by ``subprocess.Popen`` (vfork too, unless a user or group must be set,
which makes it fork). Either way the child gets:

* a new session (setsid(2)), so its pid is its process group id;
* stdin from /dev/null, stdout and stderr to two pipes read from the epoll set (or to
  /dev/null, for a stream the caller does not capture);
* SIGPIPE and SIGXFSZ at their defaults (Python ignores SIGPIPE; an ignored signal stays
  ignored across execve(2), and ``head`` in a pipeline would then never stop a writer);
* none of the daemon's file descriptors: the daemon opens every fd close-on-exec (PEP 446)
  and :func:`cloexec_inherited_fds` marks those it inherited, once at start-up (neither
  the helper nor posix_spawn closes fds).

The exit is learnt from a pidfd (pidfd_open(2)) turning readable, then reaped with
waitpid(2): nothing else waits for the child. Measured at concurrency 16 on two loaded
cores, this costs the loop about 190 µs of CPU per child against 330 µs for
``loop.subprocess_exec`` (its transports, pipe protocols and child watcher). Kernels without
pidfd_open (before 5.3) get ``loop.subprocess_exec`` and asyncio's child watcher.

The children's pidfds and pipes go into one epoll set per spawner, watched by
:class:`~fswatchd.actions.transport.ChildFds` (fswatchd/actions/transport.py, with the
transport that feeds each child's protocol).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import os
import signal
import subprocess
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .transport import ChildFds, ChildTransport, ExecError, kill_child

if TYPE_CHECKING:
    from ._clone import Start

__all__ = [
    "ChildSpawner",
    "cloexec_inherited_fds",
    "find_program",
    "spawn_exec",
]

_STDOUT, _STDERR = 1, 2
_OUTPUTS = (_STDOUT, _STDERR)
#: Signals reset to SIG_DFL in the child, as subprocess's ``restore_signals`` does.
_DEFAULT_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ)
_DEFAULT_PATH = os.defpath.encode()
#: ``_clone.spawn(path, argv, env, (fd0, fd1, fd2), reset_signals) -> (pid, pidfd, start)``
_CloneSpawn = Callable[
    [bytes, Sequence[bytes], dict[bytes, bytes], tuple[int, int, int], Sequence[int]],
    tuple[int, int, "Start"],
]

_clone_spawn: _CloneSpawn | None
try:
    from ._clone import spawn as _clone_spawn
except ImportError:  # not built: setup.py makes it optional, for a machine without a compiler
    _clone_spawn = None
#: What a stream nobody reads is duplicated from: one fd for the life of the process, so
#: that no child start pays for an open(2) of /dev/null in the clone's suspended window.
_DEV_NULL = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)


def cloexec_inherited_fds() -> int:
    """Mark every open fd above 2 close-on-exec; children started later cannot inherit them.

    The daemon's own fds already are (PEP 446); this catches those it inherited from
    whoever started it (a lock fd of flock(1), a leaked socket). Call once at start-up.

    Returns:
        the number of fds that were inheritable.
    """
    marked = 0
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd <= 2:
            continue
        with contextlib.suppress(OSError):  # the listing's own fd is gone by now
            if os.get_inheritable(fd):
                os.set_inheritable(fd, False)
                marked += 1
    return marked


def find_program(program: bytes, env: Mapping[bytes, bytes]) -> bytes:
    """The file execvpe(3) would run for ``program``, searching ``env``'s PATH.

    Args:
        program: a name (searched) or a path holding ``/`` (returned as is).
        env: the child's environment; its ``PATH`` (else ``os.defpath``) is searched.
    Returns:
        the first ``dir/program`` that is an executable file.
    Raises:
        FileNotFoundError: no such program in PATH.
        PermissionError: found, but nowhere executable (EACCES, as execvpe reports).
    """
    if b"/" in program:
        return program
    denied = False
    for directory in env.get(b"PATH", _DEFAULT_PATH).split(b":"):
        candidate = os.path.join(directory or b".", program)
        if os.access(candidate, os.X_OK) and not os.path.isdir(candidate):
            return candidate
        denied = denied or os.path.exists(candidate)
    code = errno.EACCES if denied else errno.ENOENT
    raise OSError(code, os.strerror(code), os.fsdecode(program))


def _spawn_direct(
    argv: Sequence[bytes], env: Mapping[bytes, bytes], writers: Mapping[int, int | None]
) -> tuple[int, int | None, ExecError | None]:
    """Start ``argv`` in a new session: stdin /dev/null, fd 1 and 2 onto ``writers``' fds
    (/dev/null for ``None``), the daemon's caught signals and SIGPIPE and SIGXFSZ at their
    defaults.

    Returns:
        ``(pid, pidfd, exec_error)`` from the C helper (clone(2) gives the pidfd; the
        child's execve may still be to come: ``exec_error()`` tells, once it has exited,
        whether a step in it failed), ``(pid, None, None)`` from os.posix_spawn.
    Raises:
        OSError: the program was not found; clone(2) failed; from os.posix_spawn, the
            child could not be started (execve(2)'s errno).
    """
    program = find_program(argv[0], env)
    out, err = (_DEV_NULL if (fd := writers[n]) is None else fd for n in _OUTPUTS)
    stdio = (_DEV_NULL, out, err)
    if _clone_spawn is not None:
        env = env if isinstance(env, dict) else dict(env)
        pid, pidfd, start = _clone_spawn(program, argv, env, stdio, _DEFAULT_SIGNALS)
        return pid, pidfd, functools.partial(_exec_error, start, program)
    actions = [(os.POSIX_SPAWN_DUP2, fd, number) for number, fd in enumerate(stdio)]
    pid = os.posix_spawn(
        program, tuple(argv), env, file_actions=actions, setsid=True, setsigdef=_DEFAULT_SIGNALS
    )
    return pid, None, None


def _exec_error(start: Start, program: bytes) -> OSError | None:
    """The OSError of the step that failed in an exited child the C helper started (its
    errno, ``program`` as the filename), or None if its execve(2) succeeded."""
    code = start.error
    return OSError(code, os.strerror(code), os.fsdecode(program)) if code else None


class ChildSpawner:
    """A :data:`~fswatchd.actions.process.Spawner`: starts children (see the module
    docstring) and watches the fds of those it started in one :class:`ChildFds`.

    Each ``run:`` or ``shell:`` action holds one, so the children of a rule share a set;
    a set is made at the first child and closed after the last one still running.
    """

    def __init__(self) -> None:
        """No arguments: the set is made, in the running loop, at the first child."""
        self._fds: ChildFds | None = None

    @property
    def watched_fds(self) -> int:
        """The number of fds of running children in its set (pidfds and pipes)."""
        return 0 if self._fds is None or self._fds.closed else len(self._fds)

    async def __call__(
        self,
        protocol_factory: Callable[[], asyncio.SubprocessProtocol],
        *argv: bytes,
        env: Mapping[bytes, bytes],
        cwd: str | None = None,
        capture: Collection[int] = (_STDOUT, _STDERR),
        **credentials: Any,
    ) -> tuple[asyncio.SubprocessTransport, asyncio.BaseProtocol]:
        """Start ``argv`` and connect it to a new protocol.

        Args:
            protocol_factory: makes the ``asyncio.SubprocessProtocol`` fed by the
                transport.
            argv: the program (searched in ``env``'s PATH when it holds no ``/``) and its
                arguments, bytes.
            env: the child's complete environment.
            cwd: its working directory; ``None`` keeps the daemon's.
            capture: which of fd 1 (stdout) and 2 (stderr) go to a pipe read by the
                transport; the others go to /dev/null (output nobody would log costs no
                pipe, no reads and no epoll registration).
            credentials: ``subprocess.Popen``'s ``user``, ``group``, ``extra_groups``.
        Returns:
            ``(transport, protocol)``; the transport is a :class:`ChildTransport`.
        Raises:
            OSError: the program is not in PATH or not executable (ENOENT, EACCES); the
                child could not be started (EAGAIN, ENOMEM ...; through os.posix_spawn
                or subprocess also what execve(2) refused: E2BIG, ENOEXEC ...); or it
                could not be watched (EMFILE: it is killed and reaped first). A child
                the C helper started learns what its execve refused only after: it exits
                127 and the transport's ``start_error()`` holds the OSError.
            subprocess.SubprocessError: a step before exec failed in the child (setuid
                ...).
        """
        if not _pidfd_supported():
            return await _spawn_asyncio(
                protocol_factory, argv, env, cwd=cwd, credentials=credentials, capture=capture
            )
        pipes = _pipes(n for n in _OUTPUTS if n in capture)
        writers = {n: pipes[n][1] if n in pipes else None for n in _OUTPUTS}
        readers = {number: read_end for number, (read_end, _) in pipes.items()}
        try:
            pid, pidfd, reap, exec_error = _start(argv, env, cwd, credentials, writers)
        except BaseException:
            _close_all(readers.values())
            raise
        finally:
            _close_all(write_end for _, write_end in pipes.values())
        if pidfd is None:
            try:
                pidfd = os.pidfd_open(pid)
            except BaseException:  # EMFILE: do not leave a child nobody will reap
                _kill_and_reap(pid, reap, readers.values())
                raise
        for read_end in readers.values():
            # Only our ends are non-blocking: the flag is shared through dup2, and a child
            # whose stdout returned EAGAIN would fail to write.
            os.set_blocking(read_end, False)
        protocol = protocol_factory()
        try:
            transport = ChildTransport(
                pid, pidfd, readers, protocol, reap, fds=self._child_fds(), exec_error=exec_error
            )
        except BaseException:
            _kill_and_reap(pid, reap, [pidfd, *readers.values()])
            raise
        return transport, protocol

    def _child_fds(self) -> ChildFds:
        """The open set of the running loop, made if there is none."""
        loop = asyncio.get_running_loop()
        if self._fds is None or self._fds.closed or self._fds.loop is not loop:
            self._fds = ChildFds(loop)
        return self._fds


async def spawn_exec(
    protocol_factory: Callable[[], asyncio.SubprocessProtocol],
    *argv: bytes,
    env: Mapping[bytes, bytes],
    cwd: str | None = None,
    capture: Collection[int] = (_STDOUT, _STDERR),
    **credentials: Any,
) -> tuple[asyncio.SubprocessTransport, asyncio.BaseProtocol]:
    """One child started by a :class:`ChildSpawner` of its own (an epoll set for it alone).

    For a caller that starts children now and then; the arguments, result and errors are
    those of :meth:`ChildSpawner.__call__`.
    """
    return await ChildSpawner()(
        protocol_factory, *argv, env=env, cwd=cwd, capture=capture, **credentials
    )


def _pipes(numbers: Iterable[int]) -> dict[int, tuple[int, int]]:
    """One close-on-exec pipe (read end, write end) per output number; none left open if
    one cannot be made.

    Raises:
        OSError: pipe2(2) failed (EMFILE, ENFILE).
    """
    pipes: dict[int, tuple[int, int]] = {}
    try:
        for number in numbers:
            pipes[number] = os.pipe2(os.O_CLOEXEC)
    except OSError:
        _close_all(fd for pair in pipes.values() for fd in pair)
        raise
    return pipes


def _close_all(fds: Iterable[int]) -> None:
    """Close each fd."""
    for fd in fds:
        os.close(fd)


def _kill_and_reap(pid: int, reap: Callable[[bool], int | None], fds: Iterable[int]) -> None:
    """SIGKILL the child's process group, wait for the child, close ``fds``: a child that
    cannot be watched must not run on unsupervised. Its group does not exist before its
    setsid(2): then the child alone is killed (see :func:`kill_child`)."""
    kill_child(pid, signal.SIGKILL)
    reap(True)
    _close_all(fds)


def _start(
    argv: Sequence[bytes],
    env: Mapping[bytes, bytes],
    cwd: str | None,
    credentials: Mapping[str, Any],
    writers: Mapping[int, int | None],
) -> tuple[int, int | None, Callable[[bool], int | None], ExecError | None]:
    """Start the child with fd 1 and 2 onto ``writers`` (``None``: /dev/null); its pid, a
    pidfd for it if the start made one, its reaper and, for a child whose execve may still
    be to come, what tells once it has exited whether a step in it failed (see
    :class:`ChildTransport`)."""
    if cwd is None and not credentials:
        pid, pidfd, exec_error = _spawn_direct(argv, env, writers)
        return pid, pidfd, _waitpid_reaper(pid), exec_error
    out, err = (subprocess.DEVNULL if fd is None else fd for fd in writers.values())
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, cwd=cwd,
        start_new_session=True, close_fds=True, **credentials,
    )  # fmt: skip
    return proc.pid, None, lambda block: proc.wait() if block else proc.poll(), None


def _waitpid_reaper(pid: int) -> Callable[[bool], int | None]:
    """``reap(block)`` for a child started by the helper or posix_spawn: waitpid(2) (with
    WNOHANG unless ``block``), then the exit code; ``None`` if not blocking and it cannot be
    reaped yet."""

    def reap(block: bool) -> int | None:
        try:
            reaped, status = os.waitpid(pid, 0 if block else os.WNOHANG)
        except ChildProcessError:  # reaped behind our back (SIGCHLD ignored): as asyncio does
            return 255
        return os.waitstatus_to_exitcode(status) if reaped else None

    return reap


@functools.cache
def _pidfd_supported() -> bool:
    """pidfd_open(2) works here (Linux >= 5.3, not refused by a seccomp filter)."""
    try:
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError):
        return False
    return True


async def _spawn_asyncio(
    protocol_factory: Callable[[], asyncio.SubprocessProtocol],
    argv: Sequence[bytes],
    env: Mapping[bytes, bytes],
    *,
    cwd: str | None,
    credentials: Mapping[str, Any],
    capture: Collection[int],
) -> tuple[asyncio.SubprocessTransport, asyncio.BaseProtocol]:
    """The same child through ``loop.subprocess_exec`` (no pidfds: asyncio's watcher reaps)."""
    loop = asyncio.get_running_loop()
    out, err = (subprocess.PIPE if n in capture else subprocess.DEVNULL for n in _OUTPUTS)
    return await loop.subprocess_exec(
        protocol_factory, *argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
        cwd=cwd, start_new_session=True, close_fds=True, **credentials,
    )  # fmt: skip
