"""Logging set-up: field checks, priorities, the three output formats, target choice.

The journal handler is driven through its ``send`` seam here; the real journald round
trip is in tests/process/test_journal.py. The stderr fallbacks run in a child process, so
the root logger of the test process is never reconfigured.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fswatchd.logs import (
    JournalHandler,
    PrefixFormatter,
    TextFormatter,
    _choose,
    journal_fields,
    priority,
    setup_logging,
    stderr_is_journal,
)

REPO = Path(__file__).resolve().parents[2]


def record(level: int = logging.INFO, msg: str = "hello %s", **journal: Any) -> logging.LogRecord:
    rec = logging.LogRecord("fswatchd.actions", level, "/x/y.py", 42, msg, ("world",), None)
    if journal:
        rec.journal = journal
    return rec


@pytest.mark.parametrize(
    ("level", "prio"),
    [
        (logging.DEBUG, 7),
        (logging.INFO, 6),
        (logging.WARNING, 4),
        (logging.ERROR, 3),
        (logging.CRITICAL, 2),
    ],
    ids=["debug", "info", "warning", "error", "critical"],
)
def test_priorities_follow_syslog(level: int, prio: int) -> None:
    assert priority(level) == prio


def test_fields_keep_bytes_and_stringify_numbers() -> None:
    rec = record(FSWATCHD_PATH=b"/in/\xff\n", FSWATCHD_EXIT_STATUS=3, FSWATCHD_SIGNAL=None)
    assert journal_fields(rec) == {"FSWATCHD_PATH": b"/in/\xff\n", "FSWATCHD_EXIT_STATUS": "3"}


@pytest.mark.parametrize("name", ["fswatchd_rule", "_TRUSTED", "9LIVES", "A-B", "X" * 65])
def test_fields_journald_would_drop_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="would be dropped"):
        journal_fields(record(**{name: "x"}))


def test_journal_handler_sends_one_native_entry() -> None:
    sent: list[tuple[str, dict[str, Any]]] = []
    handler = JournalHandler(send=lambda msg, **kw: sent.append((msg, kw)))
    handler.handle(
        record(
            logging.WARNING,
            FSWATCHD_RULE="ingest",
            FSWATCHD_PATH=b"\xfe",
            MESSAGE_ID="6cd85ade169d460ea256c2f3f0411640",
        )
    )
    [(message, fields)] = sent
    assert message == "hello world"
    assert fields == {
        "CODE_FILE": "/x/y.py",
        "CODE_LINE": 42,
        "CODE_FUNC": None,
        "PRIORITY": "4",
        "SYSLOG_IDENTIFIER": "fswatchd",
        "LOGGER": "fswatchd.actions",
        "FSWATCHD_RULE": "ingest",
        "FSWATCHD_PATH": b"\xfe",
        "MESSAGE_ID": "6cd85ade169d460ea256c2f3f0411640",
    }


def test_text_format_names_the_rule() -> None:
    line = TextFormatter().format(record(logging.WARNING, FSWATCHD_RULE="ingest"))
    assert line.endswith(" WARNING fswatchd[ingest]: hello world")
    assert TextFormatter().format(record()).endswith(" INFO fswatchd: hello world")


def test_prefix_format_marks_every_line() -> None:
    text = PrefixFormatter().format(record(logging.ERROR, "a\nb %s", FSWATCHD_RULE="r"))
    assert text == "<3>fswatchd[r]: a\n<3>fswatchd[r]: b world"


def test_stderr_is_journal_compares_device_and_inode(tmp_path: Path) -> None:
    with open(tmp_path / "stream", "w") as f:
        st = os.fstat(f.fileno())
        assert stderr_is_journal({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}, f.fileno())
        assert not stderr_is_journal({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"}, f.fileno())
        assert not stderr_is_journal({"JOURNAL_STREAM": "junk"}, f.fileno())
        assert not stderr_is_journal({}, f.fileno())


@pytest.mark.parametrize(
    ("target", "have_journal", "in_journal", "expected"),
    [
        ("auto", True, True, ("journal", False)),
        ("auto", True, False, ("text", False)),
        ("auto", False, True, ("prefix", True)),
        ("auto", False, False, ("text", False)),
        ("journal", True, False, ("journal", False)),
        ("journal", False, False, ("prefix", True)),
        ("stderr", True, True, ("prefix", False)),
        ("stderr", True, False, ("text", False)),
    ],
    ids=str,
)
def test_target_choice(
    target: str, have_journal: bool, in_journal: bool, expected: tuple[str, bool]
) -> None:
    module = logging if have_journal else None  # any module stands for systemd.journal
    assert _choose(target, module, in_journal) == expected


FALLBACK_CHILD = """
import sys
sys.modules["systemd"] = None  # as on a host without systemd-python
import logging
from fswatchd.logs import setup_logging
setup_logging(sys.argv[1], "info")
logging.getLogger("fswatchd.actions").warning(
    "boom", extra={"journal": {"FSWATCHD_RULE": "ingest"}})
"""


def test_without_systemd_python_stderr_gets_prefixes_after_a_notice(tmp_path: Path) -> None:
    """1. stderr is the journal stream (JOURNAL_STREAM names it); 2. systemd-python is
    missing; 3. a one-line notice, then <N>-prefixed lines."""
    err = tmp_path / "stderr"
    with open(err, "w") as f:
        st = os.fstat(f.fileno())
        env = dict(os.environ, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}")
        subprocess.run(
            [sys.executable, "-c", FALLBACK_CHILD, "auto"],
            stderr=f,
            env=env,
            cwd=REPO,
            check=True,
            timeout=20,
        )
    lines = err.read_text().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("<4>fswatchd: systemd-python is not installed")
    assert lines[1] == "<4>fswatchd[ingest]: boom"


def test_terminal_output_is_readable_text() -> None:
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    r = subprocess.run(
        [sys.executable, "-c", FALLBACK_CHILD, "stderr"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=True,
        timeout=20,
    )
    assert r.stderr.rstrip().endswith("WARNING fswatchd[ingest]: boom")
    assert len(r.stderr.splitlines()) == 1


def test_unknown_level_or_target_is_refused() -> None:
    with pytest.raises(ValueError, match="log level"):
        setup_logging("auto", "loud")
    with pytest.raises(ValueError, match="log target"):
        setup_logging("syslog", "info")
