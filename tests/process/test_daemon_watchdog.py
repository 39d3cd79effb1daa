"""The daemon feeds systemd's watchdog only while its pipeline makes progress.

A real NotifyListener plays the service manager (WATCHDOG_USEC and WATCHDOG_PID set as
systemd sets them). The daemon runs from a small driver that can inject one fault on
SIGUSR1: the inotify reader stops reading its fd (its add_reader is removed) while the
event loop, the dispatcher and everything else keep running - the wedge the watchdog
exists to catch, which a blocked loop or a stopped process would only imitate.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_support import WAIT, NotifyListener, wait_until, write_rules

#: Half of it, 0.2 s, is the daemon's ping interval; a wedge is declared after 0.3 s.
WATCHDOG_USEC = 400_000

DRIVER = r"""
import asyncio, signal, sys
from fswatchd.logs import setup_logging
from fswatchd.rules import load_ruleset
from fswatchd.supervisor import Daemon

async def main(path):
    daemon = Daemon(path, load_ruleset(path))
    # Fault injection: the reader stops reading while the loop keeps running.
    wedge = lambda: daemon.watcher._reader._unregister()
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, wedge)
    await daemon.run()

setup_logging("stderr", "info")
asyncio.run(main(sys.argv[1]))
"""


class Run:
    """The driven daemon, its listener and its stderr log."""

    def __init__(
        self, proc: subprocess.Popen[bytes], nl: NotifyListener, log: Path, started: float
    ) -> None:
        self.proc, self.nl, self.log = proc, nl, log
        #: time.monotonic() just before the daemon was started (seconds).
        self.started = started

    def pings(self) -> int:
        return sum(1 for m in self.nl.messages if m.fields.get("WATCHDOG") == "1")

    def listen(self, seconds: float) -> None:
        """Receive (and record) every message for ``seconds``: the socket is kept drained."""
        with contextlib.suppress(TimeoutError):
            self.nl.wait_for(lambda m: False, timeout=seconds)

    def drain(self) -> None:
        """Receive (and record) the messages already queued on the socket, without waiting."""
        while self.nl.recv(0) is not None:
            pass

    def wait_pings(self, count: int) -> None:
        deadline = time.monotonic() + WAIT
        while self.pings() < count:
            assert time.monotonic() < deadline, f"{count} WATCHDOG=1 pings not seen"
            self.listen(0.05)


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Run]:
    root = tmp_path / "in"
    root.mkdir()
    config = write_rules(
        tmp_path / "rules.yaml",
        {"rules": [{"name": "r", "watch": str(root), "actions": [{"run": ["/bin/true"]}]}]},
    )
    log = tmp_path / "daemon.log"
    with NotifyListener() as nl, log.open("wb") as stderr:
        started = time.monotonic()
        proc = nl.popen(
            [sys.executable, "-c", DRIVER, str(config)],
            watchdog_usec=WATCHDOG_USEC,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            nl.wait_for(READY="1", timeout=WAIT)
            yield Run(proc, nl, log, started)
        finally:
            proc.kill()
            proc.wait()


def test_idle_daemon_keeps_feeding_the_watchdog(run: Run) -> None:
    """1. No file event at all.  2. WATCHDOG=1 keeps coming at about the interval:
    an idle daemon is healthy and must never be killed."""
    run.wait_pings(8)
    # 8 pings 0.2 s apart span at least 1.4 s whenever the first came; measured from the
    # start, since pings queued while this process was not running are read in a burst.
    assert time.monotonic() - run.started >= 1.4
    assert "watchdog:" not in run.log.read_text()


def test_wedged_reader_stops_the_pings(run: Run, tmp_path: Path) -> None:
    """1. Pings flow.  2. The reader stops reading (SIGUSR1) and a file event waits in
    the kernel queue.  3. The daemon logs which part is stuck and sends no more
    WATCHDOG=1, so systemd's WatchdogSec= would abort and restart it."""
    run.wait_pings(3)
    run.proc.send_signal(signal.SIGUSR1)
    run.listen(0.1)  # the signal is handled by the loop; keep the socket drained meanwhile
    (tmp_path / "in" / "waiting").write_bytes(b"x")
    wait_until(
        lambda: "no progress in reader" in run.log.read_text() or run.listen(0.05),
        lambda: f"the watchdog's complaint; log:\n{run.log.read_text()}",
    )
    run.drain()  # a ping sent just before the complaint may still be queued
    before = run.pings()
    run.listen(5 * WATCHDOG_USEC / 2_000_000)  # five ping intervals
    assert run.pings() == before
    assert run.proc.poll() is None  # alive: killing it is systemd's job
