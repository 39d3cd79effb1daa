"""The streaming watchers under comparison: how to start each one and how it says "ready".

A :class:`WatcherSpec` turns a root directory into an argv; readiness is either a marker on
stderr (inotifywait's ``Watches established.``, our peers' ``READY``) or ``READY=1`` on a
NOTIFY_SOCKET (fswatchd, sd_notify(3)). ``start_watcher`` returns a running
:class:`~benchlib.proc.Child` whose watches are in place, with its readiness time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from .proc import Child, NotifySocket

__all__ = [
    "BENCH",
    "FSWATCHD",
    "STREAM_WATCHERS",
    "Started",
    "WatcherSpec",
    "fswatchd_has",
    "importable",
    "peer_python",
    "start_watcher",
]

BENCH = Path(__file__).resolve().parent.parent
PEERS = BENCH / "peers"
FSWATCHD = "fswatchd"


@cache
def peer_python() -> str:
    """The bench venv's python (bench/.venv), falling back to the harness's own."""
    venv = BENCH / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


@cache
def importable(module: str) -> bool:
    """True when the peer python can import ``module``."""
    argv = [peer_python(), "-c", f"import {module}"]
    return subprocess.run(argv, capture_output=True, check=False).returncode == 0


@cache
def fswatchd_has(subcommand: str) -> bool:
    """True when ``fswatchd <subcommand> --help`` succeeds with the harness's python."""
    argv = [sys.executable, "-m", "fswatchd", subcommand, "--help"]
    return subprocess.run(argv, capture_output=True, check=False).returncode == 0


@dataclass(frozen=True)
class WatcherSpec:
    """One watcher: name, argv builder, readiness kind, output format, availability.

    ``ready_marker`` None means readiness comes through NOTIFY_SOCKET. ``output`` is
    ``"json"`` (fswatchd) or ``"tsv"`` (everyone else, see peers/_common.py).
    """

    name: str
    argv: Callable[[Path], list[str]]
    ready_marker: bytes | None
    output: str
    available: Callable[[], str | None]  # None when usable, else the reason it is not

    def unavailable(self) -> str | None:
        """Why this watcher cannot run here, or None."""
        return self.available()


def _fswatchd_watch(root: Path) -> list[str]:
    return [sys.executable, "-m", "fswatchd", "watch", "-r", "-e", "ALL", "--json", str(root)]


def _inotifywait(root: Path) -> list[str]:
    # -m monitor, -r recursive, all events (the default), one "NAMES<TAB>PATH" line each;
    # no -q: that would also silence "Watches established.", the readiness marker.
    return ["inotifywait", "-m", "-r", "--format", "%e\t%w%f", str(root)]


def _peer(script: str) -> Callable[[Path], list[str]]:
    return lambda root: [peer_python(), str(PEERS / script), str(root)]


def _needs_fswatchd_watch() -> str | None:
    return None if fswatchd_has("watch") else "fswatchd watch not available"


def _needs_binary(name: str) -> Callable[[], str | None]:
    return lambda: None if shutil.which(name) else f"{name} not installed"


def _needs_module(module: str) -> Callable[[], str | None]:
    return lambda: None if importable(module) else f"{module} not installed (make bench)"


STREAM_WATCHERS: tuple[WatcherSpec, ...] = (
    WatcherSpec(FSWATCHD, _fswatchd_watch, None, "json", _needs_fswatchd_watch),
    WatcherSpec(
        "inotifywait", _inotifywait, b"Watches established.", "tsv", _needs_binary("inotifywait")
    ),
    WatcherSpec("python-ref", _peer("ref_reader.py"), b"READY", "tsv", lambda: None),
    WatcherSpec(
        "inotify_simple",
        _peer("inotify_simple_peer.py"),
        b"READY",
        "tsv",
        _needs_module("inotify_simple"),
    ),
    WatcherSpec(
        "asyncinotify",
        _peer("asyncinotify_peer.py"),
        b"READY",
        "tsv",
        _needs_module("asyncinotify"),
    ),
    WatcherSpec("watchdog", _peer("watchdog_peer.py"), b"READY", "tsv", _needs_module("watchdog")),
)


@dataclass
class Started:
    """A running watcher whose watches are in place; ``ready_s`` is spawn-to-ready seconds."""

    child: Child
    ready_s: float
    notify: NotifySocket | None = None

    def finish(self) -> None:
        """Stop and reap the watcher, then close its NOTIFY_SOCKET (kept open until now so
        its later STATUS= messages have somewhere to go)."""
        self.child.finish()
        if self.notify is not None:
            self.notify.close()


def start_watcher(
    spec: WatcherSpec, root: Path, workdir: Path, *, timeout: float, tee: Path | None = None
) -> Started:
    """Start ``spec`` on ``root`` and wait for its readiness signal.

    Raises:
        RuntimeError: it exited or did not become ready within ``timeout`` seconds; the
            message carries the end of its stderr.
    """
    env = dict(os.environ)
    notify = None
    if spec.ready_marker is None:
        notify = NotifySocket(workdir)
        env["NOTIFY_SOCKET"] = str(notify.path)
    else:
        env.pop("NOTIFY_SOCKET", None)
    child = Child(spec.argv(root), env=env, tee=tee)
    deadline = time.monotonic() + timeout
    if notify is not None:
        ready_at = notify.wait_ready(deadline, child.alive)
    else:
        assert spec.ready_marker is not None
        ready_at = child.err.wait_for(spec.ready_marker, deadline)
    started = Started(child, (ready_at or deadline) - child.started, notify)
    if ready_at is None:
        started.finish()
        raise RuntimeError(f"{spec.name} not ready after {timeout:.0f} s: {child.stderr_tail()}")
    return started
