"""``fswatchd log``: action outcomes from the journal, one line each (docs/cli.md, "log").

Reads the entries the daemon wrote (``SYSLOG_IDENTIFIER=fswatchd`` with the action
finished/failed MESSAGE_IDs), so ``journalctl -t fswatchd FSWATCHD_RULE=<rule>`` shows the
same entries with every field.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from datetime import datetime
from typing import Any, TextIO

from ._journal_query import ActionRecord, OutputLine, Query, open_journal, read_records
from ._when import parse_when

__all__ = ["add_arguments", "format_json", "format_text", "main"]


# C0 controls and DEL would break the one-line-per-outcome layout (a newline in a name).
_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F)}
_CONTROLS.update({ord("\n"): "\\n", ord("\t"): "\\t", ord("\r"): "\\r"})


def _when(text: str) -> datetime:
    try:
        return parse_when(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register ``fswatchd log``'s options on ``parser``."""
    add = parser.add_argument
    add("--rule", metavar="NAME", help="only outcomes of this rule")
    add("--path", metavar="GLOB", help="only events whose path matches GLOB (* matches /)")
    add("--failed", action="store_true", help="only failed actions")
    add("--since", metavar="WHEN", type=_when, help="from WHEN ('2026-11-29 10:00', '1h ago')")
    add("--until", metavar="WHEN", type=_when, help="up to WHEN (same forms as --since)")
    add("-f", "--follow", action="store_true", help="keep printing new outcomes")
    add("--json", action="store_true", help="one JSON object per outcome")
    add("--output", action="store_true", help="show each action's output lines under it")
    add("-D", "--directory", metavar="DIR", help="read the journal files in DIR")
    add("-u", "--unit", metavar="UNIT", help="only entries of this systemd unit")


def _escape(text: str) -> str:
    return text.translate(_CONTROLS)


def _path_text(path: bytes | None) -> str:
    return "-" if path is None else _escape(path.decode("utf-8", "backslashreplace"))


def _signal_name(value: str) -> str:
    try:
        return f"{value} ({signal.Signals(int(value)).name})"
    except ValueError:
        return value


def _result(rec: ActionRecord) -> str:
    word = "ok" if rec.ok else "FAILED"
    if rec.http_status is not None:
        detail = f"http {rec.http_status}"
    elif rec.signal is not None:
        detail = f"signal {_signal_name(rec.signal)}"
    elif rec.exit_status is not None and rec.exit_status < 0:
        detail = f"signal {-rec.exit_status}"
    elif rec.exit_status is not None:
        detail = f"exit {rec.exit_status}"
    else:
        detail = f"({_escape(rec.message)})" if not rec.ok and rec.message else ""
    if rec.attempt is not None and rec.attempt > 1:
        detail = f"{detail} attempt {rec.attempt}".strip()
    return f"{word} {detail}".strip()


def format_text(rec: ActionRecord) -> str:
    """One outcome as ``TIME RULE ACTION RESULT DURATION PATH`` and, with output, its lines.

    The path comes last because it may contain spaces; control characters in it are
    shown escaped (``\\n``, ``\\x1b``) and non-UTF-8 bytes as ``\\xff``. Returns the
    text without a final newline.
    """
    stamp = rec.time.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    duration = "-" if rec.duration_ms is None else f"{rec.duration_ms}ms"
    head = " ".join(
        [
            stamp,
            _escape(rec.rule or "-"),
            _escape(rec.action or "-"),
            _result(rec),
            duration,
            _path_text(rec.path),
        ]
    )
    lines = [f"    {o.stream}: {_escape(o.text)}" for o in rec.output]
    return "\n".join([head, *lines])


def _json_path(path: bytes | None) -> str | list[int] | None:
    # journalctl -o json's convention: a string when UTF-8, else the array of byte values.
    if path is None:
        return None
    try:
        return path.decode("utf-8")
    except UnicodeDecodeError:
        return list(path)


def _json_output(line: OutputLine) -> dict[str, str]:
    return {"time": line.time.isoformat(), "stream": line.stream, "line": line.text}


def format_json(rec: ActionRecord, with_output: bool = False) -> str:
    """One outcome as a JSON object on one line (keys in docs/cli.md)."""
    obj: dict[str, Any] = {
        "time": rec.time.isoformat(),
        "rule": rec.rule,
        "path": _json_path(rec.path),
        "action": rec.action,
        "result": "ok" if rec.ok else "failed",
        "exit_status": rec.exit_status,
        "signal": rec.signal,
        "http_status": rec.http_status,
        "duration_ms": rec.duration_ms,
        "attempt": rec.attempt,
        "event_id": rec.event_id,
        "message": rec.message,
    }
    if with_output:
        obj["output"] = [_json_output(line) for line in rec.output]
    return json.dumps(obj, ensure_ascii=False)


def _query(args: argparse.Namespace) -> Query:
    return Query(
        rule=args.rule,
        path_glob=os.fsencode(args.path) if args.path is not None else None,
        failed_only=args.failed,
        since=args.since,
        until=args.until,
        unit=args.unit,
        with_output=args.output,
        follow=args.follow,
    )


def _print_all(args: argparse.Namespace, out: TextIO) -> None:
    reader = open_journal(args.directory)
    try:
        for rec in read_records(reader, _query(args)):
            text = format_json(rec, args.output) if args.json else format_text(rec)
            print(text, file=out, flush=args.follow)
    finally:
        reader.close()


def main(args: argparse.Namespace) -> int:
    """Print the outcomes ``args`` selects; 0 also when none match.

    Raises:
        FswatchdError: no journal is readable (systemd-python missing, directory
            unreadable, no entries at all); the CLI turns it into exit status 1.
    """
    try:
        _print_all(args, sys.stdout)
    except BrokenPipeError:
        # `fswatchd log | head`: the reader left; do not let Python complain at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return 0
