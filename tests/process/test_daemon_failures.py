"""``fswatchd run`` end to end: failing, crashing, hanging and self-triggering actions never
stop the daemon or other rules.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from daemon_support import DAEMON, pids_alive, read_lines, start_daemon, wait_until

__all__ = ["start_daemon"]


def _healthy(root: Path, log: Path) -> dict[str, object]:
    argv = ["/bin/sh", "-c", 'printf "%s\\n" "$1" >> "$0"', str(log), "{relpath}"]
    return {"name": "healthy", "watch": str(root), "actions": [{"run": argv}]}


# rule name -> (its action, the outcome its log line must show)
BAD_ACTIONS = {
    "fails": ({"run": ["/bin/sh", "-c", "exit 1"]}, r"run for .* exited 1 "),
    "crashes": ({"shell": "kill -SEGV $$"}, r"shell for .* killed by signal (11|SIGSEGV)"),
    "hangs": (
        {"shell": "sleep 100 & echo $! >> {pids}; echo $$ >> {pids}; wait", "timeout": 3},
        r"shell for .* timed out",
    ),
    "missing": ({"run": ["/nonexistent/program"]}, r"run for .*/nonexistent/program"),
}


def test_bad_actions_never_stop_the_daemon(start_daemon, tmp_path: Path) -> None:
    """1. On one root: an action that exits 1, one killed by SIGSEGV, one that hangs past
       its 3 s timeout (with a grandchild; 3 s leave it time to record both pids), one
       whose program does not exist, and a healthy rule.
    2. A file: each bad action's outcome is logged as a failure; the hanging one's whole
       process group is gone; the healthy rule acts.
    3. A second file: every rule runs again; the daemon exits 0 on SIGTERM.
    """
    root, log, pids = tmp_path / "in", tmp_path / "healthy.log", tmp_path / "pids"
    root.mkdir()
    rules = [_healthy(root, log)]
    for name, (template, _) in BAD_ACTIONS.items():
        action = dict(template)
        if "shell" in action:
            action["shell"] = str(action["shell"]).replace("{pids}", str(pids))
        rules.append({"name": name, "watch": str(root), "actions": [action]})
    daemon = start_daemon({"settings": {"kill_grace": 1}, "rules": rules})
    for i, name in enumerate(("f1", "f2"), start=1):
        (root / name).write_text("x")
        wait_until(lambda i=i: len(read_lines(log)) == i, f"the healthy rule's run {i}")
        for rule, (_, outcome) in BAD_ACTIONS.items():
            daemon.wait_log(rf"WARNING fswatchd\[{rule}\]: {outcome}", count=i)
        hung = [int(p) for p in read_lines(pids)]
        assert len(hung) == 2 * i
        wait_until(lambda hung=hung: not pids_alive(hung), f"the hanging group gone: {hung}")
    assert read_lines(log) == [b"f1", b"f2"]
    assert daemon.proc.poll() is None
    assert daemon.stop() == 0


@pytest.mark.parametrize("loop_limit", [3, 1])
def test_loop_protection_stops_a_self_triggering_rule(
    start_daemon, tmp_path: Path, loop_limit: int
) -> None:
    """1. A rule on CLOSE_WRITE whose action appends to the file it was given.
    2. One write: the rule runs loop_limit + 1 times (the first job and loop_limit
       self-caused ones), then stops with ONE warning naming the path and loop_limit.
    3. The daemon stays healthy: another rule still acts.
    """
    root, other = tmp_path / "loop", tmp_path / "other"
    root.mkdir()
    other.mkdir()
    runs, log = tmp_path / "runs.log", tmp_path / "healthy.log"
    script = f'echo run >> {runs}; echo appended >> "$FSWATCHD_PATH"'
    rules = [
        {"name": "fmt", "watch": str(root), "actions": [{"shell": script}]},
        _healthy(other, log),
    ]
    settings = {"loop_limit": loop_limit, "loop_window": 1}
    daemon = start_daemon({"settings": settings, "rules": rules})
    target = root / "a.txt"
    target.write_text("start\n")
    warning = (
        rf"WARNING .*rule fmt: loop protection: {target} changed again .*loop_limit {loop_limit}\)"
    )
    daemon.wait_log(warning)
    (other / "after").write_text("x")
    wait_until(lambda: read_lines(log) == [b"after"], "the other rule to act")
    assert len(daemon.log_matches(warning)) == 1
    assert len(daemon.log_matches("loop protection")) == 1
    count = len(read_lines(runs))
    assert count >= loop_limit + 1
    assert target.read_text().count("appended") == count
    assert daemon.stop() == 0


def test_an_inherited_ignored_sigchld_does_not_lose_exit_statuses(
    start_daemon, tmp_path: Path
) -> None:
    """1. The daemon is started with SIGCHLD ignored (a disposition execve(2) keeps), as
    by a parent that ignores it. 2. An action exits 3: its outcome says exited 3, not
    the 255 of a child the kernel reaped before the daemon could."""
    ignoring = (
        "import os, signal, sys; signal.signal(signal.SIGCHLD, signal.SIG_IGN); "
        "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
    )
    wrapped = (sys.executable, "-c", ignoring, *DAEMON[1:])
    root = tmp_path / "in"
    root.mkdir()
    rule = {"name": "three", "watch": str(root), "actions": [{"run": ["/bin/sh", "-c", "exit 3"]}]}
    daemon = start_daemon({"rules": [rule]}, command=wrapped)
    (root / "f").write_text("x")
    daemon.wait_log(r"WARNING fswatchd\[three\]: run for .* exited 3 ")
    assert daemon.stop() == 0
