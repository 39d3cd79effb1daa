"""Shared test guards (no open fds, no child processes left behind), and Hypothesis settings.

Both guards are autouse and generic; they compare the process's state after the test with
the state before it, so they also catch leaks from code under test that a test forgot to
close (an InotifyFd, a socket, a child that was never waited for).
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

# Opens /dev/null once for the life of the process (the fd children's unused streams are
# duplicated from). Imported here, before any test, so that the fd guard below does not
# take it for a leak of whichever test happens to import the module first.
import fswatchd.actions.spawn  # noqa: F401

__all__: list[str] = []

# Hypothesis's per-example deadline (200 ms) and its too-slow health check measure the
# machine, not the code: on a loaded 2-core runner they fail tests that are correct.
settings.register_profile("fswatchd", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("fswatchd")

# Children killed at the end of a test are reaped by asyncio's child watcher, which may run
# a moment after the loop closes; leaks are judged only after this deadline.
_CHILD_REAP_DEADLINE = 5.0


def _open_fds() -> dict[int, str]:
    """fd -> what it points at (readlink of /proc/self/fd/N), for the leak message."""
    fds: dict[int, str] = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            fds[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:  # the fd listdir itself used, closed by now
            continue
    return fds


def _children() -> set[int]:
    """Pids of this process's children, zombies included (/proc/self/task/*/children)."""
    pids: set[int] = set()
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/children", "rb") as f:
                pids.update(int(p) for p in f.read().split())
        except OSError:  # a thread that exited meanwhile
            continue
    return pids


def _leaked_fds(before: dict[int, str]) -> dict[int, str]:
    return {fd: target for fd, target in _open_fds().items() if before.get(fd) != target}


@pytest.fixture(autouse=True)
def no_fd_leaks() -> Iterator[None]:
    """Fail a test that leaves more fds open than it found."""
    before = _open_fds()
    yield
    leaked = _leaked_fds(before)
    if leaked:  # an fd held only by a reference cycle is closed by the collector, not leaked
        gc.collect()
        leaked = _leaked_fds(before)
    assert not leaked, f"test leaked file descriptors: {leaked}"


@pytest.fixture(autouse=True)
def no_child_leaks() -> Iterator[None]:
    """Fail a test that leaves a child process (running or unreaped) behind."""
    before = _children()
    yield
    deadline = time.monotonic() + _CHILD_REAP_DEADLINE
    while (leaked := _children() - before) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not leaked, f"test leaked child processes: {sorted(leaked)}"
