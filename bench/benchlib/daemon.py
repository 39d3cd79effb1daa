"""Starting the rule runners of figures 4-7: ``fswatchd run`` and its peers.

``fswatchd run`` gets a generated rules file (docs/config.md) with one rule and signals
readiness with READY=1 on NOTIFY_SOCKET. The peers: the asyncio floors and the aiohttp
receiver print READY on stderr; ``watchmedo shell-command`` and a private ``incrond`` (own
config file, own system table directory, run in the foreground) say nothing, so they are
probed: a file is renamed into the inbox until its action has run once.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .proc import Child, NotifySocket
from .watchers import fswatchd_has, peer_python

__all__ = [
    "Runner",
    "fswatchd_config",
    "fswatchd_unavailable",
    "incron_unavailable",
    "start_fswatchd",
    "start_incrond",
    "start_stderr_ready",
    "start_watchmedo",
    "wait_file_lines",
]


class Runner:
    """A started rule runner: the process and, for fswatchd, its NOTIFY_SOCKET."""

    def __init__(self, child: Child, notify: NotifySocket | None = None) -> None:
        self.child = child
        self.notify = notify

    def finish(self) -> None:
        """Stop and reap the process (SIGTERM, then SIGKILL), close the socket."""
        self.child.finish()
        if self.notify is not None:
            self.notify.close()


def fswatchd_unavailable() -> str | None:
    """None when ``fswatchd run`` exists, else the note the table shows."""
    return None if fswatchd_has("run") else "n/a (fswatchd run not available)"


def fswatchd_config(work: Path, rule: Mapping[str, Any]) -> Path:
    """Write a rules file with ``rule`` (plus name, defaults off) under ``work``; its path.

    JSON is YAML, so the file is written with json.dumps: no quoting surprises in paths.
    """
    state = work / "state"
    state.mkdir(exist_ok=True)
    doc = {
        "settings": {"state_dir": str(state), "log_level": "warning", "loop_limit": 0,
                     "max_actions": 64},
        "rules": [{"name": "bench", "default_excludes": False, **rule}],
    }  # fmt: skip
    path = work / "rules.yaml"
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return path


def start_fswatchd(
    work: Path,
    rule: Mapping[str, Any],
    timeout: float,
    command: Sequence[str] = (sys.executable, "-m", "fswatchd"),
) -> Runner:
    """``fswatchd run -c <generated rules>`` until READY=1.

    Args:
        command: how fswatchd's CLI is run (``run -c FILE`` is appended).
    Raises:
        RuntimeError: no READY=1 within ``timeout`` s (the message has its stderr tail).
    """
    config = fswatchd_config(work, rule)
    notify = NotifySocket(work)
    env = {**os.environ, "NOTIFY_SOCKET": str(notify.path)}
    argv = [*command, "run", "-c", str(config)]
    runner = Runner(Child(argv, env=env), notify)
    if notify.wait_ready(time.monotonic() + timeout, runner.child.alive) is None:
        runner.finish()
        raise RuntimeError(f"fswatchd run not ready: {runner.child.stderr_tail()}")
    return runner


def start_stderr_ready(
    argv: list[str], timeout: float, marker: bytes = b"READY", tee: Path | None = None
) -> Runner:
    """Start ``argv`` and wait for ``marker`` on its stderr; stdout is copied to ``tee``.

    Raises:
        RuntimeError: the marker did not come within ``timeout`` s.
    """
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    runner = Runner(Child(argv, env=env, tee=tee))
    if runner.child.err.wait_for(marker, time.monotonic() + timeout) is None:
        runner.finish()
        raise RuntimeError(f"{Path(argv[1]).name} not ready: {runner.child.stderr_tail()}")
    return runner


def start_watchmedo(inbox: Path, command: str) -> Runner:
    """``watchmedo shell-command`` on ``inbox`` running ``command`` per event (no --wait:
    it does not wait for one command before starting the next)."""
    watchmedo = str(Path(peer_python()).parent / "watchmedo")
    argv = [watchmedo, "shell-command", "--ignore-directories",
            f"--command={command}", str(inbox)]  # fmt: skip
    return Runner(Child(argv))


def start_incrond(work: Path, inbox: Path, command: str) -> Runner:
    """A private ``incrond -n -f CONFIG`` with one system table line for ``inbox``.

    incrond(8) needs root for -f; the table says ``IN_MOVED_TO``, one command per file.
    """
    tables = work / "incron-system"
    tables.mkdir()
    (work / "incron-user").mkdir()
    (tables / "bench").write_text(f"{inbox} IN_MOVED_TO {command}\n")
    config = work / "incron.conf"
    config.write_text(
        f"system_table_dir = {tables}\nuser_table_dir = {work}/incron-user\n"
        f"lockfile_dir = {work}\nlockfile_name = incrond-bench\n"
    )
    return Runner(Child(["incrond", "-n", "-f", str(config)]))


def incron_unavailable() -> str | None:
    """None when a private incrond can run here (installed, and we are root)."""
    if not shutil.which("incrond"):
        return "incron not installed (make bench)"
    return None if os.geteuid() == 0 else "incrond -f needs root"


def wait_file_lines(path: Path, count: int, deadline: float, poll: float = 0.002) -> list[bytes]:
    """Poll ``path`` until it has ``count`` lines or the monotonic deadline; its lines."""
    lines: list[bytes] = []
    while True:
        try:
            lines = path.read_bytes().splitlines()
        except FileNotFoundError:
            lines = []
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(poll)
