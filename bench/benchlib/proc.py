"""Child processes under measurement: output counting, readiness, freeze/thaw, accounting.

A watcher's stdout and stderr are read by one thread each, in large chunks, so the harness
never throttles a watcher through a full pipe. Each stream is an :class:`OutputCounter`:
it counts lines, notes when registered byte patterns first appear (readiness markers,
sentinel file names) and when output last arrived, and can copy everything to a file for a
later replay. Times are ``time.monotonic()`` seconds.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

__all__ = ["Child", "NotifySocket", "OutputCounter", "proc_status_kb"]

CHUNK = 1 << 20
TAIL = 4096


class OutputCounter:
    """Counts lines of one stream and records when watched-for byte patterns show up."""

    def __init__(self, tee: IO[bytes] | None = None) -> None:
        self.lines = 0
        self.bytes = 0
        self.last_time = 0.0
        self.eof = False
        self._tee = tee
        self._tail = b""
        self._patterns: dict[bytes, float | None] = {}
        self._counted: dict[bytes, int] = {}
        self._cond = threading.Condition()

    def tail(self) -> bytes:
        """The last TAIL (4 KiB) bytes of output."""
        with self._cond:
            return self._tail

    def expect(self, pattern: bytes) -> None:
        """Start looking for ``pattern`` (bytes) in the output from now on."""
        with self._cond:
            self._register(pattern)

    def _register(self, pattern: bytes) -> None:
        # Output that arrived before registration is searched in the kept tail, so a
        # pattern registered a moment late is still found (with the time of that output).
        if pattern not in self._patterns:
            self._patterns[pattern] = self.last_time if pattern in self._tail else None

    def count(self, pattern: bytes) -> None:
        """Start counting occurrences of ``pattern`` (e.g. b"Q_OVERFLOW") per chunk."""
        with self._cond:
            self._counted.setdefault(pattern, 0)

    def counted(self, pattern: bytes) -> int:
        """Occurrences of a counted pattern so far (one split across chunks is missed)."""
        with self._cond:
            return self._counted.get(pattern, 0)

    def seen(self, pattern: bytes) -> float | None:
        """Monotonic time ``pattern`` first appeared after expect(), or None."""
        with self._cond:
            return self._patterns.get(pattern)

    def feed(self, chunk: bytes) -> None:
        """Account one chunk read from the stream (reader thread)."""
        now = time.monotonic()
        if self._tee is not None:
            self._tee.write(chunk)
        with self._cond:
            self.lines += chunk.count(b"\n")
            self.bytes += len(chunk)
            self.last_time = now
            window = self._tail + chunk
            for pattern in self._counted:
                self._counted[pattern] += chunk.count(pattern)
            for pattern, when in self._patterns.items():
                if when is None and pattern in window:
                    self._patterns[pattern] = now
            self._tail = window[-TAIL:]
            self._cond.notify_all()

    def close(self) -> None:
        """Mark end of file (reader thread)."""
        with self._cond:
            self.eof = True
            self._cond.notify_all()

    def wait_for(self, pattern: bytes, deadline: float) -> float | None:
        """Block until ``pattern`` was seen (its time) or the monotonic deadline (None)."""
        with self._cond:
            self._register(pattern)
            while self._patterns[pattern] is None and not self.eof:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return self._patterns[pattern]

    def wait_lines(self, count: int, deadline: float) -> bool:
        """Block until at least ``count`` lines arrived; False at the deadline or EOF."""
        with self._cond:
            while self.lines < count and not self.eof:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return self.lines >= count

    def wait_quiet(self, quiet: float, deadline: float) -> float:
        """Block until no output came for ``quiet`` seconds (or the deadline); last output time."""
        with self._cond:
            while not self.eof:
                now = time.monotonic()
                idle_until = max(self.last_time, 0.0) + quiet
                if now >= idle_until or now >= deadline:
                    break
                self._cond.wait(min(idle_until, deadline) - now)
            return self.last_time


def _pump(stream: IO[bytes], counter: OutputCounter) -> None:
    fd = stream.fileno()
    try:
        while chunk := os.read(fd, CHUNK):
            counter.feed(chunk)
    finally:
        counter.close()


def proc_status_kb(pid: int) -> dict[str, int]:
    """``VmRSS``/``VmHWM``/``VmSize`` of ``pid`` from /proc/<pid>/status (proc(5)), in KiB."""
    out: dict[str, int] = {}
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status", "rb") as f:
        for line in f:
            key, _, rest = line.partition(b":")
            if key in (b"VmRSS", b"VmHWM", b"VmSize"):
                out[key.decode()] = int(rest.split()[0])
    return out


class Child:
    """One measured process: started in its own session, both streams counted.

    ``finish()`` reaps it with wait4(2), so ``rusage`` holds its own CPU seconds - not those
    of every child the harness ever had. (Its ``ru_maxrss`` is not used: the kernel keeps it
    across execve(2), so it includes the harness's size at fork time; read VmHWM instead.)
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        tee: Path | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.argv = list(argv)
        self._tee_file = open(tee, "wb") if tee is not None else None  # noqa: SIM115
        self.out = OutputCounter(self._tee_file)
        self.err = OutputCounter()
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
        self.pid = self.proc.pid
        self.rusage: object | None = None
        self.status: int | None = None
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._threads = [
            threading.Thread(target=_pump, args=(self.proc.stdout, self.out), daemon=True),
            threading.Thread(target=_pump, args=(self.proc.stderr, self.err), daemon=True),
        ]
        for t in self._threads:
            t.start()

    def freeze(self) -> None:
        """SIGSTOP the process: it stops reading, the kernel queue fills."""
        os.kill(self.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT the process."""
        os.kill(self.pid, signal.SIGCONT)

    def memory(self) -> dict[str, int]:
        """Current /proc status memory fields in KiB (see proc_status_kb)."""
        return proc_status_kb(self.pid)

    def alive(self) -> bool:
        """True while the process has not exited (it may be a zombie until finish())."""
        if self.status is not None:
            return False
        # WNOWAIT: look without reaping, so finish() still gets its rusage from wait4(2).
        return os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None

    def finish(self, sig: int = signal.SIGTERM, grace: float = 5.0) -> None:
        """Send ``sig`` to its process group, SIGKILL after ``grace`` s, reap with wait4(2)."""
        if self.status is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGCONT)
                os.killpg(self.pid, sig)
            deadline = time.monotonic() + grace
            while True:
                pid, status, rusage = os.wait4(self.pid, os.WNOHANG)
                if pid:
                    self.status, self.rusage = status, rusage
                    self.proc.returncode = os.waitstatus_to_exitcode(status)
                    break
                if time.monotonic() > deadline:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(self.pid, signal.SIGKILL)
                    deadline = float("inf")
                time.sleep(0.01)
            # Children left in the group (a shell action, watchmedo's commands) go too.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
        for t in self._threads:
            t.join(timeout=5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        if self._tee_file is not None:
            self._tee_file.close()

    def cpu_seconds(self) -> float | None:
        """User+system CPU seconds of the reaped process, None before finish()."""
        ru = self.rusage
        if ru is None:
            return None
        return float(ru.ru_utime + ru.ru_stime)  # type: ignore[attr-defined]

    def stderr_tail(self) -> str:
        """The end of stderr (up to 4 KiB), for error messages."""
        return self.err.tail().decode(errors="replace").strip()


class NotifySocket:
    """A fake service manager's NOTIFY_SOCKET (sd_notify(3)): a unix datagram socket."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "notify.sock"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.bind(str(self.path))

    def wait_ready(self, deadline: float, alive: Callable[[], bool]) -> float | None:
        """Monotonic time a datagram with ``READY=1`` arrived; None at the deadline or as
        soon as ``alive()`` says the sender has exited (checked every 0.1 s)."""
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(min(left, 0.1))
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                if not alive():
                    return None
                continue
            if b"READY=1" in data.split(b"\n"):
                return time.monotonic()
        return None

    def close(self) -> None:
        """Close and unlink the socket."""
        self.sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
