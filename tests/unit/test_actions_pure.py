"""The pure parts of actions: placeholder values, env, line splitting, retry policy, body."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os

import pytest

from fswatchd.actions import Job, Outcome, job_env, job_values
from fswatchd.actions.base import (
    MESSAGE_ID_ACTION_FAILED,
    log_outcome,
)
from fswatchd.actions.command import CommandAction
from fswatchd.actions.credentials import resolve_credentials
from fswatchd.actions.env import DEFAULT_PATH, check_env_names, mask_text
from fswatchd.actions.payload import build_body, sign
from fswatchd.actions.process import LineSplitter
from fswatchd.actions.retry import Verdict, backoff_delay, parse_retry_after, verdict
from fswatchd.events import FsEvent, Mask
from fswatchd.template import compile_template

EVENT = FsEvent(
    b"/w/d/\xffn\n", int(Mask.MOVED_TO | Mask.ISDIR), is_dir=True, src_path=b"/w/o", synthetic=True
)
JOB = Job("r", "id-1", EVENT, b"/w", b"d/\xffn\n", merged=3)


def test_job_values() -> None:
    assert job_values(JOB) == {
        "path": b"/w/d/\xffn\n",
        "src_path": b"/w/o",
        "name": b"\xffn\n",
        "dir": b"/w/d",
        "root": b"/w",
        "relpath": b"d/\xffn\n",
        "mask": b"MOVED_TO|ISDIR",
        "rule": b"r",
    }


def test_job_values_without_src_or_path() -> None:
    job = Job("r", "i", FsEvent(None, int(Mask.Q_OVERFLOW)), b"/w", b"")
    values = job_values(job)
    assert (values["path"], values["src_path"], values["mask"]) == (b"", b"", b"Q_OVERFLOW")


def test_job_env() -> None:
    env = job_env(JOB, extra={"A": "b"}, paths_file="/tmp/p")
    assert env[b"PATH"] == DEFAULT_PATH.encode()
    assert env[b"A"] == b"b"
    assert env[b"FSWATCHD_IS_DIR"] == b"1"
    assert env[b"FSWATCHD_SYNTHETIC"] == b"1"
    assert env[b"FSWATCHD_MERGED"] == b"3"
    assert env[b"FSWATCHD_PATHS_FILE"] == b"/tmp/p"
    assert env[b"FSWATCHD_EVENT_ID"] == b"id-1"
    assert b"FSWATCHD_PATHS_FILE" not in job_env(JOB)


def test_mask_text() -> None:
    assert mask_text(int(Mask.CLOSE_WRITE)) == b"CLOSE_WRITE"
    assert mask_text(0) == b""


@pytest.mark.parametrize(
    "env", [{"": "x"}, {"A=B": "x"}, {"A": "x\0y"}], ids=["empty", "eq", "nul"]
)
def test_bad_env_is_refused(env: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        check_env_names(env)


def test_paths_template_without_a_batch_is_the_event_path() -> None:
    action = CommandAction([compile_template("echo"), compile_template("{paths}")], timeout=1)
    assert action.argv(JOB) == [b"echo", EVENT.path]
    batch = Job("r", "i", EVENT, b"/w", b"x", paths=(b"/a", b"/b"))
    assert action.argv(batch) == [b"echo", b"/a", b"/b"]


def test_command_refuses_a_paths_program() -> None:
    with pytest.raises(ValueError):
        CommandAction([compile_template("{paths}")], timeout=1)


@pytest.mark.parametrize(
    ("chunks", "lines", "tail"),
    [
        ([b"a\nb\n"], [b"a", b"b"], []),
        ([b"a", b"b\nc"], [b"ab"], [b"c"]),
        ([b"\n\n"], [b"", b""], []),
        ([b"x" * 10 + b"\nok\n"], [b"xxxx [line truncated]", b"ok"], []),
        ([b"xxx", b"xxx", b"xx\nok"], [b"xxxx [line truncated]"], [b"ok"]),
        ([b"xxxxxx"], [b"xxxx [line truncated]"], []),
    ],
    ids=["two", "split", "empty-lines", "cut", "cut-across-chunks", "cut-no-newline"],
)
def test_line_splitter(chunks: list[bytes], lines: list[bytes], tail: list[bytes]) -> None:
    splitter = LineSplitter(limit=4)
    got = [line for chunk in chunks for line in splitter.feed(chunk)]
    assert got == lines
    assert splitter.flush() == tail


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, Verdict.OK),
        (204, Verdict.OK),
        (301, Verdict.FINAL),
        (400, Verdict.FINAL),
        (404, Verdict.FINAL),
        (408, Verdict.RETRY),
        (429, Verdict.RETRY),
        (500, Verdict.RETRY),
        (503, Verdict.RETRY),
    ],
)
def test_verdict(status: int, expected: Verdict) -> None:
    assert verdict(status) is expected


def test_backoff_delay_full_jitter() -> None:
    ceilings = [backoff_delay(n, base=0.5, cap=3.0, random=lambda: 1.0) for n in range(1, 7)]
    assert ceilings == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]
    assert backoff_delay(1000, base=0.5, cap=3.0, random=lambda: 0.0) == 0.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("120", 120.0),
        (" 3 ", 3.0),
        ("Thu, 01 Jan 1970 00:01:40 GMT", 60.0),
        ("Thu, 01 Jan 1970 00:00:00 GMT", 0.0),
        ("soon", None),
        ("-5", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=40.0) == expected


def test_body_is_ascii_json_with_exact_bytes() -> None:
    job = Job("r", "id-1", EVENT, b"/w", b"d/\xffn\n", paths=(b"/a\xfe",), merged=3)
    raw = build_body(job, now=0.5)
    assert raw.isascii()
    body = json.loads(raw)
    assert os.fsencode(body["path"]) == EVENT.path
    assert base64.b64decode(body["path_b64"]) == EVENT.path
    assert base64.b64decode(body["src_path_b64"]) == b"/w/o"
    assert body["paths_b64"] == [base64.b64encode(b"/a\xfe").decode()]
    assert body["mask"] == ["MOVED_TO", "ISDIR"]
    assert (body["is_dir"], body["synthetic"], body["merged"]) == (True, True, 3)
    assert body["time"] == "1970-01-01T00:00:00.500000Z"


def test_overflow_body_has_null_paths() -> None:
    body = json.loads(
        build_body(Job("r", "i", FsEvent(None, int(Mask.Q_OVERFLOW)), b"/", b""), now=0)
    )
    assert body["path"] is None and body["path_b64"] is None


def test_sign() -> None:
    expected = hmac.new(b"k", b"body", hashlib.sha256).hexdigest()
    assert sign(b"k", b"body") == "sha256=" + expected


def test_an_outcomes_error_comes_after_its_duration(caplog: pytest.LogCaptureFixture) -> None:
    """The error sentence ends the line: a duration after it read as part of it."""
    caplog.set_level(logging.INFO, logger="fswatchd.actions")
    error = "stopped before it finished: the daemon is stopping"
    log_outcome(Outcome("r", "shell", "i", b"/p", ok=False, error=error, duration=4.039))
    [record] = caplog.records
    assert record.getMessage() == f"shell for /p failed in 4039 ms (attempt 1): {error}"


def test_log_outcome_fields(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="fswatchd.actions")
    log_outcome(Outcome("r", "run", "i", b"/p\xff", ok=False, signal=9, duration=0.0123))
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == "run for /p\\xff killed by signal 9 in 12 ms (attempt 1)"
    assert record.journal == {  # type: ignore[attr-defined]
        "MESSAGE_ID": MESSAGE_ID_ACTION_FAILED,
        "FSWATCHD_RULE": "r",
        "FSWATCHD_PATH": b"/p\xff",
        "FSWATCHD_ACTION": "run",
        "FSWATCHD_EVENT_ID": "i",
        "FSWATCHD_DURATION_MS": 12,
        "FSWATCHD_ATTEMPT": 1,
        "FSWATCHD_EXIT_STATUS": -9,
        "FSWATCHD_SIGNAL": "SIGKILL",
    }


def test_unknown_user_and_group_are_refused() -> None:
    with pytest.raises(ValueError, match="does not exist"):
        resolve_credentials("no-such-user-fswatchd", None)
    with pytest.raises(ValueError, match="does not exist"):
        resolve_credentials(None, "no-such-group-fswatchd")


def test_no_identity_change_needs_no_arguments() -> None:
    assert resolve_credentials(None, None) == {}


@pytest.mark.skipif(os.geteuid() != 0, reason="the arguments for root")
def test_root_switches_with_the_users_groups() -> None:
    creds = resolve_credentials("nobody", None)
    assert creds["user"] == 65534 and creds["group"] == 65534
    assert 65534 in creds["extra_groups"] and 0 not in creds["extra_groups"]
    assert resolve_credentials(None, "nogroup") == {"group": 65534, "extra_groups": []}
