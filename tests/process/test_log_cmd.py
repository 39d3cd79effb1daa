"""``fswatchd log`` on real journal entries (text, --json, filters, --output, -f, errors).

The entries are written through fswatchd's journal handler by a child process
(journal_support.write); ``fswatchd log`` runs as a child too, reading the journal
directory of the with-journald session with ``--directory``.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
from pathlib import Path

import pytest
from journal_support import (
    JOURNAL_DIR,
    REPO,
    needs_journald,
    outcome,
    output_line,
    run_log,
    unique,
    write,
)

HOSTILE = b"/srv/in/a b\n\xff.csv"


@needs_journald
def test_one_line_per_outcome_with_result_and_duration() -> None:
    rule = unique("ingest")
    write(
        [
            outcome(rule, b"/srv/in/a.csv", FSWATCHD_EXIT_STATUS=0),
            outcome(rule, HOSTILE, ok=False, FSWATCHD_SIGNAL=9),
            outcome(rule, b"/srv/in/c.csv", ok=False, action="webhook", FSWATCHD_HTTP_STATUS=503),
        ]
    )
    r = run_log("--rule", rule)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 3, r.stdout
    assert lines[0].endswith(f" {rule} run ok exit 0 12ms /srv/in/a.csv")
    # the newline and the non-UTF-8 byte are shown escaped: still one line per outcome
    assert lines[1].endswith(f" {rule} run FAILED signal 9 (SIGKILL) 12ms /srv/in/a b\\n\\xff.csv")
    assert lines[2].endswith(f" {rule} webhook FAILED http 503 12ms /srv/in/c.csv")


@needs_journald
def test_json_keeps_the_exact_path_bytes() -> None:
    rule = unique("json")
    write([outcome(rule, HOSTILE, ok=False, event_id="e1", FSWATCHD_EXIT_STATUS=2)])
    r = run_log("--rule", rule, "--json")
    assert r.returncode == 0, r.stderr
    [obj] = [json.loads(line) for line in r.stdout.splitlines()]
    assert bytes(obj["path"]) == HOSTILE  # not UTF-8: an array of byte values
    assert obj["result"] == "failed"
    assert (obj["rule"], obj["exit_status"], obj["duration_ms"], obj["event_id"]) == (
        rule,
        2,
        12,
        "e1",
    )
    assert obj["time"][:4].isdigit() and "output" not in obj


@needs_journald
def test_failed_and_path_filters() -> None:
    rule = unique("filters")
    write(
        [
            outcome(rule, b"/srv/in/a.csv"),
            outcome(rule, b"/srv/in/b.csv", ok=False, FSWATCHD_EXIT_STATUS=1),
            outcome(rule, b"/srv/out/c.txt", ok=False, FSWATCHD_EXIT_STATUS=1),
        ]
    )
    failed = run_log("--rule", rule, "--failed").stdout.splitlines()
    assert [line.rsplit(" ", 1)[1] for line in failed] == ["/srv/in/b.csv", "/srv/out/c.txt"]
    csv = run_log("--rule", rule, "--path", "/srv/*.csv").stdout.splitlines()
    assert [line.rsplit(" ", 1)[1] for line in csv] == ["/srv/in/a.csv", "/srv/in/b.csv"]
    both = run_log("--rule", rule, "--failed", "--path", "*/in/*").stdout.splitlines()
    assert [line.rsplit(" ", 1)[1] for line in both] == ["/srv/in/b.csv"]


@needs_journald
def test_output_lines_follow_their_outcome() -> None:
    """1. two runs interleave their output; 2. each outcome shows only its own lines."""
    rule = unique("conv")
    write(
        [
            output_line(rule, "r1", "stdout", "one: start"),
            output_line(rule, "r2", "stdout", "two: start"),
            output_line(rule, "r1", "stderr", "one: warning\x1b[31m"),
            outcome(rule, b"/a", event_id="r1", FSWATCHD_EXIT_STATUS=0),
            outcome(rule, b"/b", ok=False, event_id="r2", FSWATCHD_EXIT_STATUS=4),
        ]
    )
    lines = run_log("--rule", rule, "--output").stdout.splitlines()
    assert [line for line in lines if line.startswith("    ")] == [
        "    stdout: one: start",
        "    stderr: one: warning\\x1b[31m",
        "    stdout: two: start",
    ]
    assert lines[0].endswith(" /a") and lines[3].endswith(" /b")
    [first, _] = [
        json.loads(x) for x in run_log("--rule", rule, "--output", "--json").stdout.splitlines()
    ]
    assert [(o["stream"], o["line"]) for o in first["output"]] == [
        ("stdout", "one: start"),
        ("stderr", "one: warning\x1b[31m"),
    ]
    assert run_log("--rule", rule).stdout.count("\n") == 2  # without --output: outcomes only


@needs_journald
def test_since_and_until_bound_the_time() -> None:
    rule = unique("time")
    write([outcome(rule, b"/early")])
    middle = time.time()
    time.sleep(0.01)  # entries carry µs timestamps; make "after middle" unambiguous
    write([outcome(rule, b"/late")])
    since = run_log("--rule", rule, "--since", f"@{middle}").stdout.splitlines()
    until = run_log("--rule", rule, "--until", f"@{middle}").stdout.splitlines()
    assert [line.rsplit(" ", 1)[1] for line in since] == ["/late"]
    assert [line.rsplit(" ", 1)[1] for line in until] == ["/early"]
    assert run_log("--rule", rule, "--since", "1h ago").stdout.count("\n") == 2
    assert run_log("--rule", rule, "--since", "tomorrow").stdout == ""


@needs_journald
def test_no_match_is_success_with_no_output() -> None:
    r = run_log("--rule", unique("nothing"))
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


@needs_journald
def test_unit_filter_needs_the_unit_field() -> None:
    """Under with-journald no entry has _SYSTEMD_UNIT (no systemd): --unit finds none."""
    rule = unique("unit")
    write([outcome(rule, b"/a")])
    assert run_log("--rule", rule).stdout.count("\n") == 1
    r = run_log("--rule", rule, "--unit", "fswatchd")
    assert (r.returncode, r.stdout) == (0, "")


@needs_journald
def test_follow_prints_new_outcomes_as_they_come() -> None:
    rule = unique("follow")
    cmd = [sys.executable, "-m", "fswatchd", "log", "-D", JOURNAL_DIR, "--rule", rule, "-f"]
    with subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True) as p:
        try:
            assert p.stdout is not None
            write([outcome(rule, b"/first")])
            assert read_line(p.stdout, 20).endswith(" /first\n")
            write([outcome(rule, b"/second")])
            assert read_line(p.stdout, 20).endswith(" /second\n")
        finally:
            p.terminate()
            p.wait(10)


def read_line(stream: object, timeout: float) -> str:
    """One line from a child's pipe, or fail after ``timeout`` seconds."""
    with selectors.DefaultSelector() as sel:
        sel.register(stream, selectors.EVENT_READ)  # type: ignore[arg-type]
        assert sel.select(timeout), f"no line within {timeout} s"
    return stream.readline()  # type: ignore[attr-defined, no-any-return]


def test_missing_directory_is_an_error(tmp_path: Path) -> None:
    r = run_log(directory=str(tmp_path / "absent"))
    assert r.returncode == 1
    assert "cannot read the journal" in r.stderr and r.stdout == ""


def test_empty_directory_is_no_journal(tmp_path: Path) -> None:
    r = run_log(directory=str(tmp_path))
    assert r.returncode == 1
    assert "no journal entries readable" in r.stderr


def test_without_systemd_python_log_says_so(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['systemd'] = None\n"
        "from fswatchd.cli import main\n"
        "sys.exit(main(['log', '-D', sys.argv[1]]))\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert r.returncode == 1
    assert "systemd-python is not installed" in r.stderr


@pytest.mark.parametrize("bad", ["soon", "2026-13-40"])
def test_bad_time_is_a_usage_error(bad: str) -> None:
    r = run_log("--since", bad, directory=os.devnull)
    assert r.returncode == 2
    assert "cannot read time" in r.stderr
