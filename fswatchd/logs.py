"""Logging set-up: native journald entries with structured fields, or readable stderr.

Structured fields travel on a record as the ``journal`` extra, a mapping of
``FSWATCHD_*`` names (see ``fswatchd.message_ids``) to str, bytes or int values, plus an
optional ``MESSAGE_ID``::

    log.info("ingest: exit 0 after 12 ms", extra={"journal": {
        "MESSAGE_ID": MESSAGE_ID_ACTION_OK, "FSWATCHD_RULE": "ingest",
        "FSWATCHD_PATH": b"/srv/in/\\xff.csv", "FSWATCHD_EXIT_STATUS": 0}})

Three outputs, chosen by ``setup_logging``:

* journal: one native entry per record through systemd-python's ``journal.send``
  (sd_journal_send(3)): MESSAGE, PRIORITY, SYSLOG_IDENTIFIER=fswatchd, CODE_FILE/LINE/FUNC,
  LOGGER and every field of the ``journal`` extra, bytes kept exact.
* stderr that journald reads (systemd-python missing): ``<N>`` priority prefixes per line,
  which journald's stream reader turns into PRIORITY (sd-daemon(3)).
* a terminal: ``2026-11-29 10:00:00,123 WARNING fswatchd[rule]: message``.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import sys
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any, TextIO

__all__ = [
    "IDENTIFIER",
    "LEVELS",
    "TARGETS",
    "JournalHandler",
    "PrefixFormatter",
    "TextFormatter",
    "journal_fields",
    "journal_module",
    "priority",
    "setup_logging",
    "stderr_is_journal",
]

IDENTIFIER = "fswatchd"
LEVELS = ("debug", "info", "warning", "error")  # those settings.log_level accepts
TARGETS = ("auto", "journal", "stderr")
_HANDLER_NAME = "fswatchd.logs"

# syslog(3) priorities: LOG_CRIT 2, LOG_ERR 3, LOG_WARNING 4, LOG_INFO 6, LOG_DEBUG 7.
_PRIORITIES = (
    (logging.CRITICAL, 2),
    (logging.ERROR, 3),
    (logging.WARNING, 4),
    (logging.INFO, 6),
)
# systemd.journal-fields(7): journald drops entries' fields that break this silently.
_FIELD_NAME = re.compile(r"[A-Z][A-Z0-9_]{0,63}")

Sender = Callable[..., object]
FieldValue = str | bytes | int


def priority(levelno: int) -> int:
    """syslog priority (int 0-7) for a ``logging`` level number (DEBUG→7 … CRITICAL→2)."""
    for threshold, prio in _PRIORITIES:
        if levelno >= threshold:
            return prio
    return 7


def journal_module() -> ModuleType | None:
    """systemd-python's ``systemd.journal``, or None when it is not installed."""
    try:
        # import_module keeps mypy away from the repo's unit directory, also named systemd/
        return importlib.import_module("systemd.journal")
    except ImportError:
        return None


def stderr_is_journal(environ: Mapping[str, str] | None = None, fd: int = 2) -> bool:
    """True when ``fd`` is the stream systemd connected to journald.

    systemd.exec(5): ``JOURNAL_STREAM`` is ``"<st_dev>:<st_ino>"`` of that stream; it is
    inherited by children, so only a matching fstat(2) of our own fd proves it.
    """
    env = os.environ if environ is None else environ
    value = env.get("JOURNAL_STREAM", "")
    try:
        dev, ino = (int(part) for part in value.split(":"))
        st = os.fstat(fd)
    except (ValueError, OSError):
        return False
    return (st.st_dev, st.st_ino) == (dev, ino)


def _extra(record: logging.LogRecord) -> Mapping[str, FieldValue]:
    extra = getattr(record, "journal", None)
    return extra if isinstance(extra, Mapping) else {}


def _rule(record: logging.LogRecord) -> str | None:
    rule = _extra(record).get("FSWATCHD_RULE")
    if rule is None or rule == "":
        return None
    return rule.decode(errors="backslashreplace") if isinstance(rule, bytes) else str(rule)


def _who(record: logging.LogRecord) -> str:
    rule = _rule(record)
    return f"{IDENTIFIER}[{rule}]" if rule else IDENTIFIER


def journal_fields(record: logging.LogRecord) -> dict[str, FieldValue]:
    """The ``journal`` extra of ``record`` checked and normalised for sd_journal_send(3).

    Returns a new dict of field name → str or bytes (ints become decimal strings, None
    values are left out). Raises ValueError naming a field journald would silently drop
    (not ``[A-Z][A-Z0-9_]*``, at most 64 characters).
    """
    out: dict[str, FieldValue] = {}
    for name, value in _extra(record).items():
        if not _FIELD_NAME.fullmatch(name):
            raise ValueError(f"journal field {name!r} would be dropped: use [A-Z][A-Z0-9_]*")
        if value is None:
            continue
        out[name] = value if isinstance(value, str | bytes) else str(value)
    return out


class JournalHandler(logging.Handler):
    """A handler that writes each record as one native journal entry.

    Args:
        send: ``journal.send``-compatible callable; systemd-python's by default (a seam
            for tests). Raises RuntimeError when neither is available.
        identifier: SYSLOG_IDENTIFIER of every entry.
        level: the handler's threshold.
    """

    def __init__(
        self, send: Sender | None = None, identifier: str = IDENTIFIER, level: int = 0
    ) -> None:
        super().__init__(level)
        if send is None:
            journal = journal_module()
            if journal is None:
                raise RuntimeError("systemd-python is not installed: no journal handler")
            send = journal.send
        self._send: Sender = send
        self.identifier = identifier

    def emit(self, record: logging.LogRecord) -> None:
        """Send ``record``; failures go to ``handleError`` like every logging handler."""
        try:
            fields = journal_fields(record)
            message_id = fields.pop("MESSAGE_ID", None)
            kwargs: dict[str, Any] = {
                "PRIORITY": str(priority(record.levelno)),
                "SYSLOG_IDENTIFIER": self.identifier,
                "LOGGER": record.name,
                **fields,
            }
            if message_id is not None:
                kwargs["MESSAGE_ID"] = (
                    message_id.decode() if isinstance(message_id, bytes) else message_id
                )
            self._send(
                self.format(record),
                CODE_FILE=record.pathname,
                CODE_LINE=record.lineno,
                CODE_FUNC=record.funcName,
                **kwargs,
            )
        except Exception:
            self.handleError(record)


class TextFormatter(logging.Formatter):
    """``<asctime> <LEVEL> fswatchd[<rule>]: <message>`` for a terminal or a plain file."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one text block (a traceback follows on further lines)."""
        text = super().format(record)
        return f"{self.formatTime(record)} {record.levelname} {_who(record)}: {text}"


class PrefixFormatter(logging.Formatter):
    """``<N>fswatchd[<rule>]: <message>``, ``<N>`` on every line, for journald's stream reader.

    journald stores each line as its own entry, timestamps it and reads the sd-daemon(3)
    ``<N>`` prefix as PRIORITY, so neither the time nor the level name is repeated here.
    """

    def format(self, record: logging.LogRecord) -> str:
        """The record with a priority prefix on each line."""
        who = _who(record)
        prefix = f"<{priority(record.levelno)}>"
        text = super().format(record)
        return "\n".join(f"{prefix}{who}: {line}" for line in text.split("\n"))


def _level(name: str) -> int:
    if name.lower() not in LEVELS:
        raise ValueError(f"unknown log level {name!r}: use one of {', '.join(LEVELS)}")
    return int(getattr(logging, name.upper()))


def _choose(target: str, journal: ModuleType | None, in_journal: bool) -> tuple[str, bool]:
    """(output, notice): output is "journal", "prefix" or "text"; notice when the journal
    was wanted but systemd-python is missing."""
    wants_journal = target == "journal" or (target == "auto" and in_journal)
    if wants_journal and journal is not None:
        return "journal", False
    return ("prefix" if in_journal or target == "journal" else "text"), wants_journal


def setup_logging(
    target: str = "auto",
    level: str = "info",
    *,
    environ: Mapping[str, str] | None = None,
    stream: TextIO | None = None,
) -> None:
    """Configure the root logger once for the process (calling again replaces our handler).

    Args:
        target: "auto" (the journal when stderr is connected to it and systemd-python is
            importable, else stderr), "journal" (native entries even when stderr is not the
            journal), or "stderr".
        level: one of ``LEVELS``, case-insensitive.
        environ: where to read JOURNAL_STREAM (``os.environ`` by default).
        stream: the text stream for stderr output (``sys.stderr`` by default).
    Raises:
        ValueError: an unknown target or level.

    Without systemd-python a wanted journal degrades to stderr with ``<N>`` prefixes, after
    a one-line WARNING saying so.
    """
    if target not in TARGETS:
        raise ValueError(f"unknown log target {target!r}: use one of {', '.join(TARGETS)}")
    threshold = _level(level)
    out = sys.stderr if stream is None else stream
    in_journal = stderr_is_journal(environ, out.fileno()) if _has_fileno(out) else False
    journal = journal_module()
    kind, notice = _choose(target, journal, in_journal)
    handler: logging.Handler
    if kind == "journal":
        handler = JournalHandler()
    else:
        handler = logging.StreamHandler(out)
        handler.setFormatter(PrefixFormatter() if kind == "prefix" else TextFormatter())
    handler.set_name(_HANDLER_NAME)  # marks ours, to be replaced by the next call
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(threshold)
    if notice:
        logging.getLogger(__name__).warning(
            "systemd-python is not installed: logging to stderr with <N> priority prefixes, "
            "without structured FSWATCHD_* fields (install python3-systemd or the "
            "'systemd' extra)"
        )


def _has_fileno(stream: TextIO) -> bool:
    try:
        stream.fileno()
    except (OSError, ValueError, AttributeError):
        return False
    return True
