"""Read action outcomes (and their output lines) back from the journal.

An outcome is an entry with ``MESSAGE_ID`` action finished/failed (``fswatchd.message_ids``);
a child's output line is an entry with ``FSWATCHD_STREAM`` and the same
``FSWATCHD_EVENT_ID``. The matches are the ones ``journalctl SYSLOG_IDENTIFIER=fswatchd
MESSAGE_ID=… FSWATCHD_RULE=…`` would use, so both tools show the same entries.
Uses systemd-python's ``systemd.journal.Reader`` (sd-journal(3)).
"""

from __future__ import annotations

import fnmatch
import importlib
import os
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..errors import FswatchdError
from ..logs import IDENTIFIER
from ..message_ids import MESSAGE_ID_ACTION_FAILED, MESSAGE_ID_ACTION_OK

__all__ = ["ActionRecord", "OutputLine", "Query", "open_journal", "read_records"]

#: bound on buffered output while its outcome has not arrived (events, lines per event)
MAX_PENDING_EVENTS = 4096
MAX_LINES_PER_EVENT = 1000


@dataclass(frozen=True, slots=True)
class OutputLine:
    """One line a child wrote: ``stream`` is "stdout" or "stderr"; ``text`` without newline."""

    time: datetime
    stream: str
    text: str


@dataclass(frozen=True, slots=True)
class ActionRecord:
    """One action outcome as logged; optional fields are None when the entry lacks them.

    ``path`` is the exact bytes of FSWATCHD_PATH; ``exit_status`` is negative -N when a
    signal N ended the child; ``output`` is filled only when the query asks for it.
    """

    time: datetime
    ok: bool
    rule: str | None
    path: bytes | None
    action: str | None
    exit_status: int | None
    signal: str | None
    http_status: int | None
    duration_ms: int | None
    attempt: int | None
    event_id: str | None
    message: str
    output: tuple[OutputLine, ...] = ()


@dataclass(frozen=True, slots=True)
class Query:
    """What ``fswatchd log`` asks for. Times are timezone-aware; ``path_glob`` is an
    fnmatch(3)-style pattern over the path bytes (``*`` also matches ``/``); ``matches``
    are further ``FIELD=value`` journal matches ANDed to the others (e.g. ``_PID=42``)."""

    rule: str | None = None
    path_glob: bytes | None = None
    failed_only: bool = False
    since: datetime | None = None
    until: datetime | None = None
    unit: str | None = None
    with_output: bool = False
    follow: bool = False
    matches: tuple[str, ...] = field(default=())


def _realtime(usec: int) -> datetime:
    return datetime.fromtimestamp(usec / 1e6, tz=UTC).astimezone()


# Keep values as journald stored them, except the ones we read as numbers or times.
_CONVERTERS: dict[str, Any] = {
    "FSWATCHD_PATH": bytes,
    "MESSAGE_ID": bytes.decode,
    "__REALTIME_TIMESTAMP": _realtime,
}


def open_journal(directory: str | None = None) -> Any:
    """An sd-journal reader over the system journal, or over ``directory``'s files.

    Returns a ``systemd.journal.Reader``.
    Raises:
        FswatchdError: systemd-python is missing, the directory cannot be read, or no
            entry at all is readable (not root and not in group systemd-journal/adm?).
    """
    try:
        journal = importlib.import_module("systemd.journal")
    except ImportError:
        raise FswatchdError(
            "cannot read the journal: systemd-python is not installed "
            "(install python3-systemd or the 'systemd' extra; or use journalctl -t fswatchd)"
        ) from None
    try:
        reader = journal.Reader(path=directory, converters=_CONVERTERS)
        reader.seek_head()
        has_any = bool(reader.get_next())
    except OSError as exc:
        raise FswatchdError(f"cannot read the journal in {directory}: {exc}") from exc
    if not has_any:
        raise FswatchdError(f"no journal entries readable {_where(directory, os.geteuid())}")
    return reader


def _where(directory: str | None, euid: int) -> str:
    """Where no entry was found, with the likely reason (journalctl(1)'s access rules)."""
    if directory:
        return f"in {directory}"
    if euid == 0:
        return "(no journal on this machine: is systemd-journald running?)"
    return "(are you root or in group systemd-journal?)"


def _unit_name(unit: str) -> str:
    return unit if "." in unit else f"{unit}.service"


def _add_group(reader: Any, query: Query, extra: list[str]) -> None:
    base = [f"SYSLOG_IDENTIFIER={IDENTIFIER}", *query.matches]
    if query.unit:
        base.append(f"_SYSTEMD_UNIT={_unit_name(query.unit)}")
    if query.rule is not None:
        base.append(f"FSWATCHD_RULE={query.rule}")
    # sd_journal_add_match(3): different fields AND, the same field twice OR.
    reader.add_match(*base, *extra)


def _apply_matches(reader: Any, query: Query) -> None:
    reader.flush_matches()
    ids = [f"MESSAGE_ID={MESSAGE_ID_ACTION_FAILED}"]
    if not query.failed_only:
        ids.append(f"MESSAGE_ID={MESSAGE_ID_ACTION_OK}")
    _add_group(reader, query, ids)
    if query.with_output:
        reader.add_disjunction()
        _add_group(reader, query, ["FSWATCHD_STREAM=stdout", "FSWATCHD_STREAM=stderr"])


def _int(entry: Mapping[str, Any], name: str) -> int | None:
    try:
        return int(entry[name])
    except (KeyError, ValueError, TypeError):
        return None


def _str(entry: Mapping[str, Any], name: str) -> str | None:
    value = entry.get(name)
    if value is None:
        return None
    return value.decode(errors="backslashreplace") if isinstance(value, bytes) else str(value)


def _record(entry: Mapping[str, Any], output: tuple[OutputLine, ...]) -> ActionRecord:
    path = entry.get("FSWATCHD_PATH")
    return ActionRecord(
        time=entry["__REALTIME_TIMESTAMP"],
        ok=entry.get("MESSAGE_ID") == MESSAGE_ID_ACTION_OK,
        rule=_str(entry, "FSWATCHD_RULE"),
        path=path if isinstance(path, bytes) else None,
        action=_str(entry, "FSWATCHD_ACTION"),
        exit_status=_int(entry, "FSWATCHD_EXIT_STATUS"),
        signal=_str(entry, "FSWATCHD_SIGNAL"),
        http_status=_int(entry, "FSWATCHD_HTTP_STATUS"),
        duration_ms=_int(entry, "FSWATCHD_DURATION_MS"),
        attempt=_int(entry, "FSWATCHD_ATTEMPT"),
        event_id=_str(entry, "FSWATCHD_EVENT_ID"),
        message=_str(entry, "MESSAGE") or "",
        output=output,
    )


def _line_text(entry: Mapping[str, Any]) -> str:
    # The actions module writes "<rule>: <line>" so plain journalctl reads well; the rule
    # is shown on the outcome line already.
    text = _str(entry, "MESSAGE") or ""
    prefix = f"{_str(entry, 'FSWATCHD_RULE')}: "
    return text[len(prefix) :] if text.startswith(prefix) else text


class _OutputBuffer:
    """Output lines by event id, held until their outcome entry arrives (bounded)."""

    def __init__(self) -> None:
        self._lines: OrderedDict[str, list[OutputLine]] = OrderedDict()

    def add(self, event_id: str, line: OutputLine) -> None:
        lines = self._lines.setdefault(event_id, [])
        if len(lines) < MAX_LINES_PER_EVENT:
            lines.append(line)
        if len(self._lines) > MAX_PENDING_EVENTS:
            self._lines.popitem(last=False)

    def take(self, event_id: str | None) -> tuple[OutputLine, ...]:
        return tuple(self._lines.pop(event_id, ())) if event_id else ()


def _wanted(record: ActionRecord, query: Query) -> bool:
    if query.path_glob is None:
        return True
    return record.path is not None and fnmatch.fnmatchcase(record.path, query.path_glob)


def _entries(reader: Any, query: Query) -> Iterator[Mapping[str, Any]]:
    while True:
        entry = reader.get_next()
        if entry:
            yield entry
        elif not query.follow:
            return
        else:
            reader.wait(1.0)  # a bounded wait, so Ctrl-C is seen at least once a second


def read_records(reader: Any, query: Query) -> Iterator[ActionRecord]:
    """The outcomes matching ``query``, oldest first, each with its output when asked.

    Args:
        reader: from ``open_journal``; its matches and position are replaced.
        query: the filters; with ``follow`` the iterator waits for new entries forever
            (until ``until`` is passed, or the caller stops).
    Yields:
        ActionRecord, one per outcome entry.
    """
    _apply_matches(reader, query)
    if query.since is not None:
        reader.seek_realtime(query.since)
    else:
        reader.seek_head()
    buffer = _OutputBuffer()
    for entry in _entries(reader, query):
        when = entry["__REALTIME_TIMESTAMP"]
        if query.until is not None and when > query.until:
            return
        stream = _str(entry, "FSWATCHD_STREAM")
        if stream is not None:
            event_id = _str(entry, "FSWATCHD_EVENT_ID")
            if event_id:
                buffer.add(event_id, OutputLine(when, stream, _line_text(entry)))
            continue
        record = _record(entry, buffer.take(_str(entry, "FSWATCHD_EVENT_ID")))
        if _wanted(record, query):
            yield record
