"""Run ``fswatchd run`` as a real subprocess under a fake service manager, for process tests.

    def test_x(start_daemon, tmp_path):
        d = start_daemon(rules)                    # dict -> rules file; waits for READY=1
        ...                                        # touch files, then wait for effects:
        wait_until(lambda: log.exists(), "the action's log")
        d.wait_log("run for .* exited 0")          # a line of the daemon's stderr (regex)
        assert d.stop() == 0                        # SIGTERM, deadline, exit status

Readiness and every later sd_notify message come from ``sdtest.NotifyListener`` (a real
unix datagram socket in ``NOTIFY_SOCKET``). The daemon logs to a file (its stderr), which
the helpers read. Waits poll for an observable effect with a deadline, never sleep for
ordering. Teardown stops every daemon still running (SIGTERM, a deadline, then SIGKILL).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "WAIT",
    "Daemon",
    "NotifyListener",
    "guarded_ancestors",
    "inotify_watch_count",
    "pids_alive",
    "read_lines",
    "start_daemon",
    "wait_until",
    "write_rules",
]

TOOLS = Path(__file__).resolve().parents[2].parent / "shared" / "tools"
if not (TOOLS / "sdtest.py").is_file():
    # An error, not a skip: a checkout outside the project tree (a worktree elsewhere)
    # would otherwise pass with every daemon test silently skipped.
    raise ImportError(
        f"{TOOLS}/sdtest.py (the NotifyListener) is missing: run the tests from a checkout"
        " beside ../shared (or link ../shared/tools to it there)"
    )
sys.path.insert(0, str(TOOLS))
from sdtest import Message, NotifyListener  # noqa: E402

#: Seconds; generous for a loaded 2-core machine, never reached when all is well.
WAIT = 20.0
#: Seconds a stopped daemon gets before SIGKILL at teardown.
STOP_WAIT = 20.0
_POLL = 0.02
_RECORD = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ ")
#: The daemon's command line, before its options.
DAEMON = (sys.executable, "-m", "fswatchd", "run")


def wait_until(
    predicate: Callable[[], Any], what: str | Callable[[], str], timeout: float = WAIT
) -> Any:
    """Poll ``predicate`` until it returns something truthy; return that value.

    Raises AssertionError naming ``what`` (or what it returns, called at the time) after
    ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            text = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout} s waiting for {text}")
        time.sleep(_POLL)


def read_lines(path: Path) -> list[bytes]:
    """The complete lines of ``path`` (bytes, without newlines); [] if it does not exist."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    return data.split(b"\n")[:-1]  # a line still being written has no newline yet


def write_rules(path: Path, rules: dict[str, Any] | str) -> Path:
    """Write a rules file (a dict is written as JSON, which is YAML); return ``path``.

    Written to a temporary name and renamed, so a reload never reads half a file.
    """
    text = rules if isinstance(rules, str) else json.dumps(rules, indent=1)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path


def pids_alive(pids: list[int]) -> list[int]:
    """The pids that still name a process that is not a zombie."""
    alive = []
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if stat.rsplit(")", 1)[1].split()[0] != "Z":
            alive.append(pid)
    return alive


def guarded_ancestors(*roots: Path) -> int:
    """How many watches guard these roots' ancestors (every one but ``/``; see rootset.py)."""
    return len({p for root in roots for p in root.parents if p != Path("/")})


def inotify_watch_count(pid: int) -> int:
    """Watches the kernel holds on ``pid``'s inotify fds (``inotify wd:`` lines of fdinfo)."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") != "anon_inode:inotify":
                continue
            info = Path(f"/proc/{pid}/fdinfo/{fd}").read_text()
        except OSError:
            continue
        count += sum(line.startswith("inotify wd:") for line in info.splitlines())
    return count


class Daemon:
    """One ``python -m fswatchd run`` child: its process, notify messages and stderr log."""

    def __init__(
        self, proc: subprocess.Popen[bytes], listener: NotifyListener, log_path: Path
    ) -> None:
        self.proc = proc
        self.listener = listener
        self.log_path = log_path
        #: The READY=1 that ended start-up (set by start_daemon when it waited for it).
        self.ready: Message | None = None

    @property
    def pid(self) -> int:
        """The daemon's pid."""
        return self.proc.pid

    def log(self) -> str:
        """Everything the daemon has written to stderr so far (decoded, lossless)."""
        return self.log_path.read_bytes().decode("utf-8", "surrogateescape")

    def log_matches(self, pattern: str) -> list[str]:
        """The log lines in which the regex ``pattern`` is found."""
        rx = re.compile(pattern)
        return [line for line in self.log().splitlines() if rx.search(line)]

    def stray_lines(self) -> list[str]:
        """Log lines that do not start a record (a timestamp): a record split by a name
        holding a newline, which could forge a record in a text log."""
        return [line for line in self.log().splitlines() if not _RECORD.match(line)]

    def wait_log(self, pattern: str, count: int = 1, timeout: float = WAIT) -> list[str]:
        """Wait until ``count`` log lines match the regex ``pattern``; return them."""
        return list(
            wait_until(
                lambda: (m := self.log_matches(pattern)) and len(m) >= count and m,
                lambda: f"{count} log line(s) matching {pattern!r}; log:\n{self.log()}",
                timeout,
            )
        )

    def notified(self, pred: Callable[[Message], bool] | None = None, **expect: str) -> Message:
        """The next sd_notify message from this daemon matching ``pred``/``expect``."""

        def mine(m: Message) -> bool:
            return m.pid == self.pid and (pred is None or pred(m))

        deadline = time.monotonic() + WAIT
        while True:  # in slices, so that a daemon that died fails the wait at once
            try:
                return self.listener.wait_for(mine, timeout=0.25, **expect)
            except TimeoutError as exc:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    code = self.proc.poll()
                    raise AssertionError(f"{exc}\nexit: {code}; log:\n{self.log()}") from None

    def signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the daemon."""
        self.proc.send_signal(sig)

    def reload(self) -> Message:
        """SIGHUP, then wait for RELOADING=1 and the READY=1 that ends the reload.

        Returns the READY=1 message.
        """
        self.signal(signal.SIGHUP)
        self.notified(RELOADING="1")
        return self.notified(READY="1")

    def wait(self, timeout: float = STOP_WAIT) -> int:
        """The exit status, waiting at most ``timeout`` seconds."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"daemon still running after {timeout} s; log:\n{self.log()}"
            ) from None

    def stop(self, timeout: float = STOP_WAIT) -> int:
        """SIGTERM, then the exit status within ``timeout`` seconds."""
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def children(self) -> list[int]:
        """Pids of the daemon's direct children (zombies included)."""
        pids: list[int] = []
        for tid in os.listdir(f"/proc/{self.pid}/task"):
            try:
                text = Path(f"/proc/{self.pid}/task/{tid}/children").read_text()
            except OSError:
                continue
            pids.extend(int(p) for p in text.split())
        return pids

    def kill(self) -> None:
        """Teardown: SIGTERM with a deadline, then SIGKILL; always reaps the child."""
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def start_daemon(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    """``start_daemon(rules, *, ready=True, cwd=tmp_path, args=(), command=DAEMON)`` ->
    :class:`Daemon`.

    Writes ``rules`` (a dict, or YAML text) to ``tmp_path/rules.yaml`` unless it is a
    Path, starts ``command -c FILE --log-target stderr`` (``python -m fswatchd run``) with
    stderr in a file, and (with ``ready``) waits for its READY=1. Every daemon is stopped
    at teardown.
    """
    listener = NotifyListener()
    started: list[Daemon] = []

    def start(
        rules: dict[str, Any] | str | Path,
        *,
        ready: bool = True,
        cwd: Path = tmp_path,
        args: tuple[str, ...] = (),
        command: Sequence[str] = DAEMON,
    ) -> Daemon:
        config = rules if isinstance(rules, Path) else write_rules(tmp_path / "rules.yaml", rules)
        log_path = tmp_path / f"daemon-{len(started)}.log"
        with log_path.open("wb") as stderr:
            proc = listener.popen(
                [*command, "-c", str(config), "--log-target", "stderr", *args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                cwd=cwd,
            )
        daemon = Daemon(proc, listener, log_path)
        started.append(daemon)
        if ready:
            daemon.ready = daemon.notified(READY="1")
            assert "STATUS" in daemon.ready.fields, daemon.ready.raw
        return daemon

    yield start
    for daemon in started:
        daemon.kill()
    listener.close()
