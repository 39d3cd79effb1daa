"""``fswatchd run`` end to end: SIGHUP reloads, validate-then-swap, never half-applied.

Each reload is observed through the service manager's side of sd_notify(3): RELOADING=1
(with MONOTONIC_USEC=) when it starts, READY=1 when it is over, whatever the outcome.
"""

from __future__ import annotations

import re
import signal
import threading
import time
from pathlib import Path

import pytest
from daemon_support import Daemon, read_lines, start_daemon, wait_until, write_rules

__all__ = ["start_daemon"]


def _rule(name: str, root: Path, log: Path) -> dict[str, object]:
    argv = ["/bin/sh", "-c", 'printf "%s\\n" "$1" >> "$0"', str(log), "{relpath}"]
    return {"name": name, "watch": str(root), "actions": [{"run": argv}]}


def _sighup(daemon: Daemon) -> tuple[int, int, int]:
    """SIGHUP; returns (MONOTONIC_USEC sent, CLOCK_MONOTONIC µs before, after)."""
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    daemon.signal(signal.SIGHUP)
    message = daemon.notified(RELOADING="1")
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    return int(message.fields["MONOTONIC_USEC"]), before, after


def test_broken_reload_keeps_the_old_rules(start_daemon, tmp_path: Path) -> None:
    """1. Rules with one root; then a broken rules file and SIGHUP.
    2. RELOADING=1 with MONOTONIC_USEC= (CLOCK_MONOTONIC at the time), then READY=1.
    3. The error is logged with file, line and key; a new file is still acted on by the
       old rule.
    """
    one = tmp_path / "one"
    one.mkdir()
    log = tmp_path / "one.log"
    daemon = start_daemon({"rules": [_rule("one", one, log)]})
    config = tmp_path / "rules.yaml"
    write_rules(config, "rules:\n  - name: one\n    watch: relative\n    actions: [{run: [x]}]\n")
    usec, before, after = _sighup(daemon)
    assert before <= usec <= after
    assert "STATUS" in daemon.notified(READY="1").fields
    daemon.wait_log(
        rf"ERROR .*reload failed, keeping the old rules: {re.escape(str(config))}:3: "
        r"rules\[0\]\.watch: 'relative' is not an absolute path"
    )
    (one / "after-broken").write_text("x")
    wait_until(lambda: b"after-broken" in read_lines(log), "the old rule to act")
    assert daemon.stop() == 0


def test_reload_with_new_events_on_a_watched_root(start_daemon, tmp_path: Path) -> None:
    """1. A rule on CLOSE_WRITE; a reload adds a rule on ATTRIB for the same root.
    2. A chmod runs the new rule: the watches now ask the kernel for ATTRIB.
    """
    root = tmp_path / "in"
    root.mkdir()
    (root / "victim").write_text("x")
    log, attrib = tmp_path / "in.log", tmp_path / "attrib.log"
    daemon = start_daemon({"rules": [_rule("write", root, log)]})
    chmod = {**_rule("chmod", root, attrib), "events": ["ATTRIB"]}
    write_rules(tmp_path / "rules.yaml", {"rules": [_rule("write", root, log), chmod]})
    daemon.reload()
    daemon.wait_log(r"INFO .*reloaded .*: 2 rules")
    (root / "victim").chmod(0o600)
    wait_until(lambda: read_lines(attrib) == [b"victim"], "the ATTRIB rule added by the reload")
    assert daemon.stop() == 0


def test_reload_adding_a_root_acts_on_its_existing_files(start_daemon, tmp_path: Path) -> None:
    """1. Rules with one root; a second root whose files already exist.
    2. Good rules adding the second root, and SIGHUP: its existing files are acted on
       (the new root is scanned) without any further change on disk.
    3. Both roots keep working.
    """
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    (two / "sub").mkdir(parents=True)
    for rel in ("old1", "sub/old2"):
        (two / rel).write_text(rel)
    log_one, log_two = tmp_path / "one.log", tmp_path / "two.log"
    daemon = start_daemon({"rules": [_rule("one", one, log_one)]})
    rules = {"rules": [_rule("one", one, log_one), _rule("two", two, log_two)]}
    write_rules(tmp_path / "rules.yaml", rules)
    daemon.reload()
    daemon.wait_log(r"INFO .*reloaded .*: 2 rules")
    wait_until(
        lambda: set(read_lines(log_two)) >= {b"old1", b"sub/old2"},
        lambda: f"the new root's existing files; got {read_lines(log_two)}",
    )
    (two / "new").write_text("x")
    (one / "after").write_text("x")
    wait_until(lambda: b"new" in read_lines(log_two), "the new rule on a new file")
    wait_until(lambda: b"after" in read_lines(log_one), "the first rule after reload")
    assert daemon.stop() == 0


# Its 60 s wait must end before the test timeout (pyproject.toml) does, so that a slow
# run fails with the wait's message.
@pytest.mark.timeout(180)
def test_no_event_lost_across_reloads_under_load(start_daemon, tmp_path: Path) -> None:
    """1. A writer thread creates files in the watched root without pause.
    2. Meanwhile five reloads alternate between two valid rules files (the second adds a
       rule on another root); each ends with READY=1.
    3. Every file the writer created is acted on at least once.
    """
    root, other = tmp_path / "in", tmp_path / "other"
    root.mkdir()
    other.mkdir()
    log = tmp_path / "in.log"
    plain = {"rules": [_rule("ingest", root, log)]}
    extended = {"rules": [_rule("ingest", root, log), _rule("other", other, tmp_path / "o.log")]}
    daemon = start_daemon(plain)
    config = tmp_path / "rules.yaml"
    created: list[str] = []
    done = threading.Event()

    def writer() -> None:
        # Paced (load generation, not ordering): about 500 files/s keeps the whole test
        # to a few thousand actions however long the reloads take.
        while not done.is_set() or len(created) < 300:
            name = f"f{len(created):05}"
            (root / name).write_text(name)
            created.append(name)
            done.wait(0.002)

    thread = threading.Thread(target=writer, name="writer")
    thread.start()
    try:
        for i in range(5):
            write_rules(config, extended if i % 2 == 0 else plain)
            daemon.reload()
        wait_until(lambda: len(created) >= 300, "the writer's first 300 files")
    finally:
        done.set()
        thread.join()
    assert len(daemon.log_matches(r"INFO .*reloaded ")) == 5
    want = {name.encode() for name in created}
    wait_until(
        lambda: set(read_lines(log)) >= want,
        lambda: f"all {len(want)} files; missing {sorted(want - set(read_lines(log)))[:20]}",
        timeout=60,
    )
    assert daemon.stop() == 0
