"""Helpers for the tests that need a real journald (run the suite under with-journald).

``write(records)`` logs records from a child process through ``setup_logging("journal")``,
shaped like the actions module's (outcome entries with MESSAGE_ID, output lines with
FSWATCHD_STREAM), so these tests depend on the journal handler, not on the daemon.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from fswatchd.message_ids import MESSAGE_ID_ACTION_FAILED, MESSAGE_ID_ACTION_OK

sys.path.insert(0, str(Path(__file__).resolve().parents[2].parent / "shared" / "tools"))
import sdtest

__all__ = [
    "JOURNAL_DIR",
    "REPO",
    "needs_journald",
    "outcome",
    "output_line",
    "run_log",
    "sdtest",
    "unique",
    "write",
]

REPO = Path(__file__).resolve().parents[2]
JOURNAL_DIR = os.environ.get("WITH_JOURNALD_DIR", "")
needs_journald = pytest.mark.skipif(
    not JOURNAL_DIR,
    reason="needs a real journald: run under ../shared/tools/with-journald (make test does)",
)

_WRITER = """
import ast, logging, sys
from fswatchd.logs import setup_logging
setup_logging("journal", "debug")
log = logging.getLogger("fswatchd.actions")
for level, message, fields in ast.literal_eval(sys.stdin.read()):
    log.log(level, "%s", message, extra={"journal": fields})
"""

Record = tuple[int, str, dict[str, Any]]


def unique(prefix: str) -> str:
    """A rule name no other test uses: tests share one journal."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def outcome(
    rule: str,
    path: bytes,
    *,
    ok: bool = True,
    event_id: str | None = None,
    action: str = "run",
    **fields: Any,
) -> Record:
    """An action outcome as fswatchd.actions logs it: INFO when ok, WARNING when failed."""
    journal = {
        "MESSAGE_ID": MESSAGE_ID_ACTION_OK if ok else MESSAGE_ID_ACTION_FAILED,
        "FSWATCHD_RULE": rule,
        "FSWATCHD_PATH": path,
        "FSWATCHD_ACTION": action,
        "FSWATCHD_EVENT_ID": event_id or uuid.uuid4().hex,
        "FSWATCHD_DURATION_MS": 12,
        "FSWATCHD_ATTEMPT": 1,
        **fields,
    }
    word = "ok" if ok else "failed"
    return (20 if ok else 30, f"rule {rule}: {action} for {path!r} {word}", journal)


def output_line(rule: str, event_id: str, stream: str, text: str, path: bytes = b"") -> Record:
    """One line of a child's output: stdout at INFO, stderr at WARNING."""
    journal = {
        "FSWATCHD_RULE": rule,
        "FSWATCHD_STREAM": stream,
        "FSWATCHD_EVENT_ID": event_id,
        "FSWATCHD_PATH": path,
        "FSWATCHD_ACTION": "run",
    }
    return (20 if stream == "stdout" else 30, f"{rule}: {text}", journal)


def write(records: list[Record]) -> None:
    """Log ``records`` from a child process; return once journald has stored them."""
    p = subprocess.run(
        [sys.executable, "-c", _WRITER],
        input=repr(records),
        text=True,
        cwd=REPO,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert p.returncode == 0, p.stderr
    assert p.stderr == "", p.stderr  # a dropped field would show up as a handler error
    sdtest.journal_sync()


def run_log(*args: str, directory: str | None = None) -> subprocess.CompletedProcess[str]:
    """``fswatchd log --directory <journal> ARGS`` as a child; its exit status and output."""
    return subprocess.run(
        [sys.executable, "-m", "fswatchd", "log", "--directory", directory or JOURNAL_DIR, *args],
        text=True,
        cwd=REPO,
        capture_output=True,
        timeout=30,
        check=False,
    )
