"""Structured fields on real journal entries written through fswatchd's journal handler.

Needs a real journald (``make test`` runs the suite under with-journald); each test
isolates its entries with a cursor and a rule name of its own.
"""

from __future__ import annotations

import json
import subprocess

from journal_support import JOURNAL_DIR, needs_journald, outcome, output_line, sdtest, unique, write

from fswatchd.message_ids import MESSAGE_ID_ACTION_FAILED, MESSAGE_ID_ACTION_OK

pytestmark = needs_journald

HOSTILE = b"/srv/in/caf\xe9 $(rm -rf ~)\n;`x`.csv"  # Latin-1 byte, shell syntax, newline


def entries(rule: str, cursor: str | None) -> list[dict[str, object]]:
    return sdtest.journal_entries(f"FSWATCHD_RULE={rule}", after_cursor=cursor)


def test_outcome_fields_round_trip_with_exact_path_bytes() -> None:
    rule = unique("ingest")
    cursor = sdtest.journal_cursor()
    write([outcome(rule, HOSTILE, ok=False, event_id="ev1", FSWATCHD_EXIT_STATUS=3)])
    [e] = entries(rule, cursor)
    assert bytes(e["FSWATCHD_PATH"]) == HOSTILE  # non-UTF-8: journalctl gives byte values
    assert e["MESSAGE_ID"] == MESSAGE_ID_ACTION_FAILED
    assert e["PRIORITY"] == "4"
    assert e["SYSLOG_IDENTIFIER"] == "fswatchd"
    assert (e["FSWATCHD_EXIT_STATUS"], e["FSWATCHD_EVENT_ID"]) == ("3", "ev1")
    assert (e["FSWATCHD_DURATION_MS"], e["FSWATCHD_ATTEMPT"], e["FSWATCHD_ACTION"]) == (
        "12",
        "1",
        "run",
    )
    assert e["CODE_FILE"] and e["CODE_LINE"] and e["CODE_FUNC"]
    assert e["LOGGER"] == "fswatchd.actions"


def test_stdout_and_stderr_lines_are_told_apart_by_priority() -> None:
    rule = unique("conv")
    cursor = sdtest.journal_cursor()
    write(
        [
            output_line(rule, "ev2", "stdout", "converted 3 pages"),
            output_line(rule, "ev2", "stderr", "warning: font missing"),
            outcome(rule, b"/srv/a.pdf", event_id="ev2", FSWATCHD_EXIT_STATUS=0),
        ]
    )
    got = [
        (e.get("FSWATCHD_STREAM"), e["PRIORITY"], e.get("MESSAGE_ID"))
        for e in entries(rule, cursor)
    ]
    assert got == [("stdout", "6", None), ("stderr", "4", None), (None, "6", MESSAGE_ID_ACTION_OK)]


def test_journalctl_matches_on_the_fields() -> None:
    """``journalctl FSWATCHD_RULE=x MESSAGE_ID=y`` finds the same entries (the docs' promise)."""
    rule = unique("match")
    write([outcome(rule, b"/a", ok=True), outcome(rule, b"/b", ok=False)])
    out = subprocess.run(
        [
            "journalctl",
            "-D",
            JOURNAL_DIR,
            "-o",
            "json",
            f"FSWATCHD_RULE={rule}",
            f"MESSAGE_ID={MESSAGE_ID_ACTION_FAILED}",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    [e] = [json.loads(line) for line in out.splitlines()]
    assert e["FSWATCHD_PATH"] == "/b"
