"""``fswatchd run`` end to end: a 2,000-file burst into a watched inbox, concurrency 4.

Each action (a /bin/sh, cheap to start) appends its path to a log, and while it runs holds
a marker file in a `running` directory, counting the markers present: no count can exceed
the number of actions really running at that moment, so the largest count seen is a lower
bound of the real peak and must never pass the rule's limit.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from daemon_support import pids_alive, read_lines, start_daemon, wait_until

__all__ = ["start_daemon"]

FILES = 2000
CONCURRENCY = 4


# Its 60 s wait must end before the test timeout (pyproject.toml) does, so that a slow
# run fails with the wait's message.
@pytest.mark.timeout(180)
def test_burst_every_file_acted_on_within_the_limit(start_daemon, tmp_path: Path) -> None:
    """1. 2,000 files are renamed into the inbox as fast as Python can.
    2. Every file is acted on exactly once (each path once in the log).
    3. No more than 4 actions ever ran at once.
    4. Afterwards the daemon has no child left, zombie or not.
    """
    inbox, staging, running = tmp_path / "inbox", tmp_path / "staging", tmp_path / "running"
    for d in (inbox, staging, running):
        d.mkdir()
    log, counts = tmp_path / "acted.log", tmp_path / "counts.log"
    script = (
        f": > {running}/$$; set -- {running}/*; echo $# >> {counts}; rm {running}/$$; "
        f'printf "%s\\n" "$FSWATCHD_NAME" >> {log}'
    )
    rule = {
        "name": "burst",
        "watch": str(inbox),
        "concurrency": CONCURRENCY,
        "actions": [{"shell": script}],
    }
    daemon = start_daemon({"rules": [rule]})
    names = [f"f{i:05}" for i in range(FILES)]
    for name in names:
        (staging / name).write_bytes(b"x")
    for name in names:
        os.rename(staging / name, inbox / name)
    wait_until(
        lambda: len(read_lines(log)) >= FILES,
        lambda: f"{FILES} actions; got {len(read_lines(log))}",
        timeout=60,
    )
    acted = read_lines(log)
    assert sorted(acted) == sorted(n.encode() for n in names)
    peak = max(int(c) for c in read_lines(counts))
    assert 1 <= peak <= CONCURRENCY, peak
    wait_until(lambda: not daemon.children(), lambda: f"no children; got {daemon.children()}")
    assert not pids_alive(daemon.children())
    assert daemon.stop() == 0
