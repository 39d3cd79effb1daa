"""``fswatchd run`` end to end: a watched file followed by name across replacements, and
roots that are missing at start, deleted while running and created again.

Each step waits for its own effect (a line the action appends) before the next one, so
every line is attributed to the step that caused it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from daemon_support import read_lines, start_daemon, wait_until

__all__ = ["start_daemon"]


def _lines(log: Path) -> list[str]:
    return [line.decode() for line in read_lines(log)]


def test_watched_file_is_followed_by_name(start_daemon, tmp_path: Path) -> None:
    """1. `watch:` names etc/app.conf, which exists at start.
    2. Written in place -> a run. Replaced by a rename (editor style) -> a run for the new
       inode; written in place again -> a run (the new inode is the one followed).
    3. `sed -i` -> a run. logrotate style (rename away, create anew) -> a run for the new
       file; the rotated app.conf.1 and sibling files never trigger anything.
    """
    etc = tmp_path / "etc"
    etc.mkdir()
    conf = etc / "app.conf"
    conf.write_text("v0")
    log = tmp_path / "conf.log"
    script = (
        'printf "%s %s %s %s\\n" "$FSWATCHD_MASK" "$FSWATCHD_RELPATH" '
        f'"$(stat -c %i "$FSWATCHD_PATH")" "$(cat "$FSWATCHD_PATH")" >> {log}'
    )
    rule = {"name": "conf", "watch": str(conf), "concurrency": 1, "actions": [{"shell": script}]}
    # The steps follow each other within loop_window of the previous run, which loop
    # protection would take for the action rewriting its own file (docs/dispatch.md).
    daemon = start_daemon({"settings": {"loop_limit": 0}, "rules": [rule]})
    want: list[str] = []

    def expect(mask: str, content: str) -> None:
        want.append(f"{mask} app.conf {conf.stat().st_ino} {content}")
        wait_until(lambda: _lines(log) == want, lambda: f"{want}; got {_lines(log)}")

    conf.write_text("v1")
    expect("CLOSE_WRITE", "v1")
    (etc / "app.conf.new").write_text("v2")
    os.rename(etc / "app.conf.new", conf)
    expect("MOVED_TO", "v2")
    conf.write_text("v3")
    expect("CLOSE_WRITE", "v3")
    subprocess.run(["sed", "-i", "s/v3/v4/", str(conf)], check=True, timeout=30)
    expect("MOVED_TO", "v4")
    os.rename(conf, etc / "app.conf.1")
    (etc / "app.conf.1").write_text("rotated")
    conf.write_text("v5")
    expect("CLOSE_WRITE", "v5")
    (etc / "other.conf").write_text("x")
    conf.write_text("v6")
    expect("CLOSE_WRITE", "v6")
    assert daemon.stop() == 0


def test_missing_root_is_watched_once_it_appears(start_daemon, tmp_path: Path) -> None:
    """1. The root later/inbox does not exist at start: a warning, and READY=1 anyway.
    2. mkdir -p later/inbox/sub/deep with files inside at once: every file is acted on,
       and the daemon says it watches the root.
    3. The root is deleted while running (a warning says so), and a prepared tree renamed
       onto its name: its files are acted on by synthetic events.
    4. Deleted again and recreated with mkdir: a new file in it is acted on.
    """
    root = tmp_path / "later" / "inbox"
    log = tmp_path / "acted.log"
    action = 'printf "%s %s\\n" "$FSWATCHD_RELPATH" "$FSWATCHD_SYNTHETIC" >> ' + str(log)
    rule = {"name": "late", "watch": str(root), "actions": [{"shell": action}]}
    daemon = start_daemon({"rules": [rule]})
    assert daemon.log_matches(rf"WARNING .*{root}.*(does not exist|waiting for it to appear)")

    (root / "sub" / "deep").mkdir(parents=True)
    files = ["a", "sub/b", "sub/deep/c"]
    for rel in files:
        (root / rel).write_text(rel)
    wait_until(
        lambda: {line.split()[0] for line in _lines(log)} >= set(files),
        lambda: f"actions for {files}; got {_lines(log)}",
    )
    assert daemon.log_matches(rf"INFO .*root '{root}' is there: watching it")

    shutil.rmtree(root)
    daemon.wait_log(rf"WARNING .*root '{root}' is gone; waiting for it to appear again")
    prepared = tmp_path / "prepared"
    (prepared / "p").mkdir(parents=True)
    for rel in ("one", "p/two"):
        (prepared / rel).write_text(rel)
    os.rename(prepared, root)
    wait_until(
        lambda: {"one 1", "p/two 1"} <= set(_lines(log)),
        lambda: f"synthetic actions for one, p/two; got {_lines(log)}",
    )

    shutil.rmtree(root)
    root.mkdir()
    (root / "again").write_text("x")
    wait_until(
        lambda: "again" in {line.split()[0] for line in _lines(log)},
        lambda: f"an action for the recreated root; got {_lines(log)}",
    )
    assert daemon.stop() == 0
