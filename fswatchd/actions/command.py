"""``run:`` actions: execute an argv directly (execve(2), never a shell) for each job.

Each argv element is a compiled :class:`~fswatchd.template.Template`; it expands to exactly
one element, whatever bytes the file name holds, except ``{paths}``, which expands to one
element per path of a batch. The child also gets the event in its environment
(:func:`fswatchd.actions.env.job_env`).

Each child runs in its own session and process group, stdin from /dev/null, stdout and
stderr logged line by line under the rule's name; on timeout or daemon shutdown the whole
group gets SIGTERM, then SIGKILL after the grace period (:mod:`fswatchd.actions.process`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from ..events import show_path
from ..template import Template
from .base import LOGGER_NAME, Job, Outcome, log_outcome
from .credentials import resolve_credentials
from .env import DEFAULT_PATH, check_env_names, job_env, job_values
from .process import ChildExit, Spawner, run_child
from .spawn import ChildSpawner

__all__ = ["ChildAction", "CommandAction", "install_child_watcher"]

_log = logging.getLogger(LOGGER_NAME)
_STREAMS = {1: ("stdout", logging.INFO), 2: ("stderr", logging.WARNING)}


def install_child_watcher(loop: asyncio.AbstractEventLoop | None = None) -> None:
    """Make asyncio reap children through pidfds (pidfd_open(2)) instead of a thread each.

    Python 3.11's default child watcher starts one thread per child; at thousands of
    commands per second that is the bottleneck. From 3.12 asyncio uses pidfds by itself and
    this is a no-op. Call it once at start-up, from inside the loop (or pass ``loop``).

    Args:
        loop: the loop to attach to; the running loop when ``None``.
    Raises:
        RuntimeError: no ``loop`` given and no loop is running.
    Kernels without pidfd_open (before 5.3) keep the default watcher.
    """
    if sys.version_info >= (3, 12):
        return
    loop = loop or asyncio.get_running_loop()
    current = asyncio.get_child_watcher()
    if isinstance(current, asyncio.PidfdChildWatcher):
        if not current.is_active():
            current.attach_loop(loop)
        return
    if not _pidfd_works():
        return
    watcher = asyncio.PidfdChildWatcher()
    watcher.attach_loop(loop)
    asyncio.set_child_watcher(watcher)


def _pidfd_works() -> bool:
    """pidfd_open(2) exists here and is not refused (old kernel, seccomp filter)."""
    try:
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError):
        return False
    return True


class ChildAction:
    """What ``run:`` and ``shell:`` share: the environment, identity, runner and logging.

    Subclasses set :attr:`kind` and implement :meth:`argv`.
    """

    kind: ClassVar[str] = "run"

    def __init__(
        self,
        *,
        timeout: float,
        grace: float = 5.0,
        cwd: str | None = None,
        user: str | None = None,
        group: str | None = None,
        env: Mapping[str, str] | None = None,
        spawner: Spawner | None = None,
    ) -> None:
        """See :class:`CommandAction` for the arguments.

        Raises:
            ValueError: a bad timeout/grace, env name, user or group (see
                :func:`fswatchd.actions.credentials.resolve_credentials`).
        """
        if timeout <= 0 or grace < 0:
            raise ValueError(f"timeout must be > 0 and grace >= 0 (got {timeout}, {grace})")
        check_env_names(env or {})
        self.timeout = timeout
        self.grace = grace
        self.cwd = cwd
        self.env: Mapping[str, str] = dict(env or {})
        self._credentials = resolve_credentials(user, group)
        self._spawner = spawner if spawner is not None else ChildSpawner()

    def argv(self, job: Job) -> list[bytes]:
        """The argv for ``job``; subclasses define it."""
        raise NotImplementedError

    async def run(self, job: Job) -> Outcome:
        """Run the child for ``job`` and log its outcome; see :class:`CommandAction`."""
        started = asyncio.get_running_loop().time()
        paths_file: str | None = None
        try:
            argv = self.argv(job)
            if job.paths:
                paths_file = self._write_paths_file(job.paths)
            env = job_env(job, base_path=DEFAULT_PATH, extra=self.env, paths_file=paths_file)
            result: ChildExit | str = await run_child(
                argv,
                env=env,
                cwd=self.cwd,
                timeout=self.timeout,
                grace=self.grace,
                on_line=self._line_logger(job),
                spawner=self._spawner,
                popen_kwargs=self._credentials,
                capture=_logged_streams(),
            )
        except (OSError, ValueError) as exc:
            result = _spawn_error(exc, self.argv_0(job))
        except subprocess.SubprocessError as exc:  # reported by the child before exec
            result = f"cannot start {os.fsdecode(self.argv_0(job))!r}: {exc}"
        finally:
            if paths_file is not None:
                _unlink(paths_file)
        outcome = self._outcome(job, result, asyncio.get_running_loop().time() - started)
        log_outcome(outcome)
        return outcome

    def argv_0(self, job: Job) -> bytes:
        """The program name, for error messages."""
        try:
            return self.argv(job)[0]
        except (IndexError, ValueError):
            return b"?"

    def _outcome(self, job: Job, result: ChildExit | str, duration: float) -> Outcome:
        """Turn the child's end (or a start failure sentence) into an Outcome."""
        common: dict[str, Any] = {
            "rule": job.rule,
            "action": self.kind,
            "event_id": job.event_id,
            "path": job.event.path,
            "mask": job.event.mask,
            "duration": duration,
        }
        if isinstance(result, str):
            return Outcome(ok=False, error=result, **common)
        code = result.returncode
        status = code if code is not None and code >= 0 else None
        sig = -code if code is not None and code < 0 else None
        error = None
        if result.timed_out:
            error = f"ran longer than its timeout of {self.timeout:g} s; process group stopped"
        elif code != 0:
            error = f"exited {code}" if sig is None else f"killed by signal {sig}"
        return Outcome(
            ok=error is None,
            exit_status=status,
            signal=sig,
            error=error,
            timed_out=result.timed_out,
            **common,
        )

    def _line_logger(self, job: Job) -> Callable[[int, bytes], None]:
        """A callback logging one child output line per record, with the job's fields."""
        path = job.event.path or b""
        kind = self.kind

        def log_line(fd: int, line: bytes) -> None:
            stream, level = _STREAMS[fd]
            if not _log.isEnabledFor(level):
                return
            fields = {
                "FSWATCHD_RULE": job.rule,
                "FSWATCHD_STREAM": stream,
                "FSWATCHD_EVENT_ID": job.event_id,
                "FSWATCHD_PATH": path,
                "FSWATCHD_ACTION": kind,
            }
            # Escaped like paths: a child's CR or ESC must not rewrite the log's lines or
            # drive the terminal of whoever reads it. The rule's name is in the fields;
            # handlers print it as fswatchd[rule].
            _log.log(level, "%s", show_path(line), extra={"journal": fields})

        return log_line

    def _write_paths_file(self, paths: Sequence[bytes]) -> str:
        """Write every batch path, each followed by NUL, to a fresh 0600 temporary file.

        Owned by the user the child runs as, so a child that dropped privileges can read it.
        """
        fd, name = tempfile.mkstemp(prefix="fswatchd-paths-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(b"".join(p + b"\0" for p in paths))
                if "user" in self._credentials or "group" in self._credentials:
                    os.fchown(
                        f.fileno(),
                        self._credentials.get("user", -1),
                        self._credentials.get("group", -1),
                    )
        except BaseException:
            _unlink(name)
            raise
        return name


class CommandAction(ChildAction):
    """A ``run:`` action: execute an argv built from templates, no shell involved.

    Args:
        argv: one :class:`~fswatchd.template.Template` per element; ``argv[0]`` is the
            program (searched in PATH when it holds no ``/``).
        timeout: seconds the child may run before its process group gets SIGTERM.
        grace: seconds between SIGTERM and SIGKILL (timeout and daemon shutdown).
        cwd: working directory; ``None`` keeps the daemon's (``/`` under systemd).
        user: run as this user (name or uid) with its groups; needs root.
        group: run with this primary group (name or gid); needs root.
        env: the rule's extra environment (see :func:`fswatchd.actions.env.job_env`).
        spawner: see :data:`fswatchd.actions.process.Spawner`; ``None``: a
            :class:`~fswatchd.actions.spawn.ChildSpawner` of the action's own.
    Raises:
        ValueError: an empty argv, a bad timeout, env name, user or group.

    ``run(job)`` returns an :class:`~fswatchd.actions.base.Outcome`: ``ok`` when the
    child exited 0; ``exit_status`` or ``signal``; ``timed_out``; ``error`` for a child that
    could not start (``ENOENT``, ``EACCES``, argv too long).
    """

    kind: ClassVar[str] = "run"

    def __init__(self, argv: Sequence[Template], **kwargs: Any) -> None:
        """See the class docstring."""
        if not argv or argv[0].is_paths:
            raise ValueError("run: needs a program as its first element (not {paths})")
        super().__init__(**kwargs)
        self.templates = tuple(argv)

    def argv(self, job: Job) -> list[bytes]:
        """Expand the templates for ``job``: one element each, ``{paths}`` one per path."""
        values = job_values(job)
        out: list[bytes] = []
        for template in self.templates:
            if template.is_paths:
                out.extend(job.paths or ((job.event.path,) if job.event.path else ()))
            else:
                out.append(template.expand(values))
        return out


def _logged_streams() -> tuple[int, ...]:
    """The child's output streams (1, 2) whose lines would be logged at the current level.

    The others go to /dev/null: at ``log_level: warning`` stdout lines would be read, split
    and dropped, and each child's pipe costs the loop a pipe2(2), an epoll registration
    and removal, a read and two closes.
    """
    return tuple(fd for fd, (_, level) in _STREAMS.items() if _log.isEnabledFor(level))


def _spawn_error(exc: OSError | ValueError, program: bytes) -> str:
    """A sentence for a child that could not be started."""
    name = os.fsdecode(program)
    if isinstance(exc, OSError) and exc.errno == errno.E2BIG:
        return (
            f"cannot run {name!r}: argument list too long; for large batches read "
            "FSWATCHD_PATHS_FILE instead of passing {paths}"
        )
    if isinstance(exc, OSError) and exc.errno == errno.ENOEXEC:
        return f"cannot run {name!r}: {exc.strerror} (a script needs a #! line)"
    if isinstance(exc, OSError) and exc.strerror:
        return f"cannot run {name!r}: {exc.strerror}"
    return f"cannot run {name!r}: {exc}"


def _unlink(name: str) -> None:
    """Remove a temporary file, ignoring one that is already gone."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(name)
