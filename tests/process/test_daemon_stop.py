"""``fswatchd run`` end to end: the phased stop on SIGTERM, with actions still running.

A running action proves it started by writing its pid (and its grandchild's) to files;
the test then signals the daemon and checks the exit status, the elapsed time, the
sd_notify STOPPING=1, the log, and that no process of the action survives.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from daemon_support import pids_alive, read_lines, start_daemon, wait_until

__all__ = ["start_daemon"]


def _pid(path: Path) -> int:
    return int(wait_until(lambda: read_lines(path), f"a pid in {path}")[0])


def test_stop_waits_for_a_slow_action(start_daemon, tmp_path: Path) -> None:
    """1. A slow action runs until the test releases it; stop_timeout is 10 s.
    2. SIGTERM: STOPPING=1 at once; the daemon is still running, waiting for the action.
    3. Released, the action finishes and the daemon exits 0, well before stop_timeout;
       the action's output and outcome are in the log.
    """
    root, log, release = tmp_path / "in", tmp_path / "slow.log", tmp_path / "release"
    root.mkdir()
    script = (
        f"echo started >> {log}; while [ ! -e {release} ]; do sleep 0.02; done; "
        f"echo slow output; echo finished >> {log}"
    )
    rule = {"name": "slow", "watch": str(root), "actions": [{"shell": script}]}
    daemon = start_daemon({"settings": {"stop_timeout": 10}, "rules": [rule]})
    (root / "f").write_text("x")
    wait_until(lambda: read_lines(log) == [b"started"], "the slow action to start")
    start = time.monotonic()
    daemon.signal(signal.SIGTERM)
    daemon.notified(STOPPING="1")
    assert daemon.proc.poll() is None
    release.touch()
    assert daemon.wait() == 0
    elapsed = time.monotonic() - start
    assert read_lines(log) == [b"started", b"finished"]
    assert elapsed < 10, elapsed
    assert daemon.log_matches(r"INFO fswatchd\[slow\]: slow output$")
    assert daemon.log_matches(r"INFO fswatchd\[slow\]: shell for .*/in/f exited 0")
    assert daemon.log_matches(r"stop 3/4: no running action to terminate")
    assert daemon.log_matches(r"stop 4/4: done")


def test_stop_timeout_terminates_the_process_group(start_daemon, tmp_path: Path) -> None:
    """1. stop_timeout 0.5, kill_grace 1; concurrency 1 and three files: one action runs
       (a shell waiting on `sleep 100` and on a grandchild that ignores SIGTERM), two wait
       (a second rule's action proves the daemon has taken in all three events).
    2. SIGTERM: exit 0 within a few seconds; the child and both grandchildren are gone
       (SIGTERM to the group, then SIGKILL); the log says 2 queued actions were not started.
    3. The stopped action still has its one outcome, failed, saying the stop cut it short.
    """
    root, other = tmp_path / "in", tmp_path / "other"
    root.mkdir()
    other.mkdir()
    pids, marker = tmp_path / "pids", tmp_path / "marker"
    script = (
        f"sleep 100 & echo $! >> {pids}; (trap '' TERM; exec sleep 100) & echo $! >> {pids}; "
        f"echo $$ >> {pids}; wait"
    )
    rules = [
        {"name": "stuck", "watch": str(root), "concurrency": 1, "actions": [{"shell": script}]},
        {"name": "marker", "watch": str(other), "actions": [{"shell": f"echo x > {marker}"}]},
    ]
    daemon = start_daemon({"settings": {"stop_timeout": 0.5, "kill_grace": 1}, "rules": rules})
    for name in ("a", "b", "c"):
        (root / name).write_text("x")
    # The pump submits events in order: once the marker's action ran, a, b, c are queued.
    (other / "m").write_text("x")
    wait_until(marker.exists, "the marker rule's action")
    procs = wait_until(lambda: len(read_lines(pids)) == 3 and read_lines(pids), "three pids")
    procs = [int(p) for p in procs]
    start = time.monotonic()
    assert daemon.stop() == 0
    elapsed = time.monotonic() - start
    assert elapsed < 0.5 + 1 + 5, elapsed
    # SIGKILLed, they may take a moment to be gone
    wait_until(lambda: not pids_alive(procs), lambda: f"the actions gone: {pids_alive(procs)}")
    assert daemon.log_matches(r"WARNING .*\b2 queued actions were not started")
    assert daemon.log_matches(r"stop 3/4: terminating 1 running actions")
    stopped = (
        r"WARNING fswatchd\[stuck\]: shell for .*/in/a failed in \d+ ms \(attempt 1\): "
        "stopped before it finished"
    )
    assert daemon.log_matches(stopped)


def test_second_sigterm_exits_at_once(start_daemon, tmp_path: Path) -> None:
    """1. A slow action (sleep 60) runs; stop_timeout is 30 s.
    2. SIGTERM: the stop waits for the action (STOPPING=1, phase 2 logged).
    3. A second SIGTERM: the daemon exits at once with status 1, and the action is killed
       on the way out (its own session: nothing else would stop it outside systemd).
    """
    root, pids = tmp_path / "in", tmp_path / "pids"
    root.mkdir()
    rule = {
        "name": "slow",
        "watch": str(root),
        "actions": [{"shell": f"echo $$ > {pids}; exec sleep 60"}],
    }
    daemon = start_daemon({"settings": {"stop_timeout": 30}, "rules": [rule]})
    (root / "f").write_text("x")
    child = _pid(pids)
    try:
        daemon.signal(signal.SIGTERM)
        daemon.notified(STOPPING="1")
        daemon.wait_log(r"stop 2/4: waiting up to 30 s")
        start = time.monotonic()
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 1
        assert time.monotonic() - start < 5
        assert daemon.log_matches(r"WARNING .*second stop signal: exiting now; 1 running")
        wait_until(lambda: not pids_alive([child]), "the action to be killed")
    finally:  # whatever happened above, leave no sleep behind
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child, signal.SIGKILL)
