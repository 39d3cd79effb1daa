"""Event lines for ``fswatchd watch``: JSON lines for scripts, aligned text for people.

Both formatters turn a batch of :class:`~fswatchd.events.FsEvent` into one ``bytes`` blob,
one line per event, so the caller writes a batch with a single ``write``.

JSON lines (one object per line, key order fixed)::

    {"path": "/d/f", "mask": ["CREATE"], "is_dir": false, "src_path": null,
     "synthetic": false, "cookie": 0}

ERROR events add ``"errno": "ENOSPC"`` (the symbolic name) and ``"message"``. Paths are
bytes; those that are not valid UTF-8 are carried with Python's surrogateescape convention
(byte 0xff becomes ``\\udcff``), so ``os.fsencode(json.loads(line)["path"])`` (or
``.encode("utf-8", "surrogateescape")``) gives back the exact bytes. The output is pure ASCII.

Text lines: ``MASK-NAMES[ (scan)]  PATH`` (``SRC -> PATH`` for a paired rename). Paths are
escaped so that no file name can forge a line or drive the terminal: ``\\\\``, ``\\n``,
``\\t``, ``\\r``, and ``\\xNN`` for every byte of any other non-printable character or
invalid UTF-8.

Speed matters here: a backlog drain formats hundreds of thousands of events per second.
The JSON formatter never calls ``json.dumps`` for an ordinary event: the tail of each line
(mask names and flags) is cached per mask, and a batch whose paths are all plain printable
ASCII is checked with one C-level ``bytes.translate`` over all of them and copied verbatim.
"""

from __future__ import annotations

import errno as errno_mod
import json
from collections.abc import Sequence
from typing import Protocol

from .events import FsEvent
from .events import Mask as Mask
from .events import mask_names as mask_names

__all__ = [
    "Formatter",
    "JsonLinesFormatter",
    "TextFormatter",
    "escape_text",
    "json_path",
]

# Bytes that a path may hold and still be copied verbatim between JSON quotes and into a
# text line: printable ASCII except '"' and '\'. Everything else takes the slow path.
_UNSAFE = bytes([*range(0x20), ord('"'), ord("\\"), *range(0x7F, 0x100)])

# A stray mask cache (masks are kernel bit sets, so a few dozen in practice) is emptied
# rather than allowed to grow without bound.
_CACHE_LIMIT = 4096

_JSON_HEAD = b'{"path": "'
# Events whose lines are never cached: ERROR lines carry errno and message; Q_OVERFLOW a
# null path.
_SPECIAL_BITS = int(Mask.ERROR | Mask.Q_OVERFLOW)


class Formatter(Protocol):
    """Turns a batch of events into the bytes to write (every line ends with ``\\n``)."""

    def format(self, events: Sequence[FsEvent]) -> bytes:
        """Return the lines for ``events``, in order, as one ``bytes`` object."""
        ...


def _is_plain(raw: bytes) -> bool:
    """True if ``raw`` is printable ASCII without '"' or '\\'."""
    return len(raw.translate(None, _UNSAFE)) == len(raw)


def json_path(raw: bytes | None) -> bytes:
    """The JSON value for a path: a quoted, escaped, ASCII string, or ``null``.

    Args:
        raw: the path's exact bytes, or None.
    Returns:
        e.g. ``b'"/tmp/a"'``; invalid UTF-8 bytes appear as ``\\udcXX`` escapes
        (surrogateescape), other non-ASCII as ``\\uXXXX``; ``b"null"`` for None.
    """
    if raw is None:
        return b"null"
    if _is_plain(raw):
        return b'"' + raw + b'"'
    return json.dumps(raw.decode("utf-8", "surrogateescape")).encode("ascii")


def _json_names(mask: int) -> bytes:
    """The ``"mask"`` value: a JSON list of the event bit names."""
    return ("[" + ", ".join(f'"{n}"' for n in mask_names(mask)) + "]").encode("ascii")


def _json_bool(value: bool) -> bytes:
    return b"true" if value else b"false"


def _json_tail(mask: int, is_dir: bool, synthetic: bool) -> bytes:
    """Everything after the path of an ordinary event (no rename source, no cookie)."""
    return b"".join(
        (
            b'", "mask": ',
            _json_names(mask),
            b', "is_dir": ',
            _json_bool(is_dir),
            b', "src_path": null, "synthetic": ',
            _json_bool(synthetic),
            b', "cookie": 0}\n',
        )
    )


def _errno_name(number: int) -> str:
    """``errno.ENOSPC`` -> ``"ENOSPC"``; an unknown number as its decimal string."""
    return errno_mod.errorcode.get(number, str(number))


def _json_line(event: FsEvent) -> bytes:
    """One JSON line for any event: the general (slower) path."""
    parts = [
        b'{"path": ',
        json_path(event.path),
        b', "mask": ',
        _json_names(event.mask),
        b', "is_dir": ',
        _json_bool(event.is_dir),
        b', "src_path": ',
        json_path(event.src_path),
        b', "synthetic": ',
        _json_bool(event.synthetic),
        b', "cookie": ',
        str(int(event.cookie)).encode("ascii"),
    ]
    if event.mask & Mask.ERROR:
        parts += (
            b', "errno": ',
            json.dumps(_errno_name(event.errno)).encode("ascii"),
            b', "message": ',
            json.dumps(event.message).encode("ascii"),
        )
    parts.append(b"}\n")
    return b"".join(parts)


class JsonLinesFormatter:
    """FsEvent batches -> JSON lines (see the module docstring for the object's keys).

    Caches the tail of ordinary lines per (mask, is_dir, synthetic); one instance per
    output stream. Not thread-safe (fswatchd is single-threaded).
    """

    def __init__(self) -> None:
        # key: event[1:6], i.e. (mask, is_dir, src_path, synthetic, cookie); only keys with
        # src_path None and cookie 0 are ever stored, so a hit proves the event is ordinary.
        self._tails: dict[tuple[object, ...], bytes] = {}

    def format(self, events: Sequence[FsEvent]) -> bytes:
        """Return the JSON lines for ``events`` as one ``bytes`` object.

        Args:
            events: FsEvents in stream order.
        Returns:
            ``len(events)`` lines, each ending in ``\\n``; pure ASCII.
        """
        # One translate over every path of the batch costs ~25 ns a path; one call per
        # path costs ~200 ns (call overhead dominates for short strings).
        try:
            plain = _is_plain(b"".join([e[0] for e in events]))  # type: ignore[misc]
        except TypeError:  # a Q_OVERFLOW event (path None) is in the batch
            plain = False
        if plain:
            return self._format_plain(events)
        return b"".join([self._line(e) for e in events])

    def _format_plain(self, events: Sequence[FsEvent]) -> bytes:
        """The hot loop, for a batch whose paths are all bytes that need no escaping."""
        get = self._tails.get
        head = _JSON_HEAD
        out: list[bytes] = []
        append = out.append
        for event in events:
            tail = get(event[1:6])
            append(head + event[0] + tail if tail is not None else self._line(event))  # type: ignore[operator]
        return b"".join(out)

    def _line(self, event: FsEvent) -> bytes:
        """One line for any event; fills the tail cache for ordinary ones."""
        path, mask, is_dir, src_path, synthetic, cookie = event[:6]
        if (
            path is None
            or src_path is not None
            or cookie
            or mask & _SPECIAL_BITS
            or not _is_plain(path)
        ):
            return _json_line(event)
        tails = self._tails
        tail = tails.get(event[1:6])
        if tail is None:
            if len(tails) >= _CACHE_LIMIT:
                tails.clear()
            tail = tails[event[1:6]] = _json_tail(mask, is_dir, synthetic)
        return _JSON_HEAD + path + tail


_TEXT_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def escape_text(raw: bytes) -> bytes:
    """A path (or message) made safe for one line of a terminal or log.

    Args:
        raw: exact bytes.
    Returns:
        UTF-8 bytes: printable characters as they are; ``\\\\``, ``\\n``, ``\\t``, ``\\r``;
        ``\\xNN`` for each byte of any other non-printable character (C0/C1 controls, DEL,
        Unicode format characters) and for each byte that is not valid UTF-8. Unambiguous:
        a literal backslash is always doubled.
    """
    if _is_plain(raw):
        return raw
    out: list[str] = []
    for char in raw.decode("utf-8", "surrogateescape"):
        if char in _TEXT_ESCAPES:
            out.append(_TEXT_ESCAPES[char])
        elif char.isprintable():
            out.append(char)
        else:
            out.extend(f"\\x{b:02x}" for b in char.encode("utf-8", "surrogateescape"))
    return "".join(out).encode("utf-8")


# Wide enough for "MOVED_TO,ISDIR (scan)"; longer names push the path right.
_TEXT_WIDTH = 22


class TextFormatter:
    """FsEvent batches -> aligned text lines for a person at a terminal.

    ``CREATE,ISDIR          /d/sub``; ``MOVED_TO              /d/a -> /d/b``; events made by
    a scan carry `` (scan)`` after the names; ERROR lines end with ``(ENOSPC: message)``;
    an overflow reads ``Q_OVERFLOW            (kernel queue overflowed; events were lost)``.
    """

    def __init__(self) -> None:
        # key: event[1:6] as in JsonLinesFormatter; the value is the padded mask column.
        self._heads: dict[tuple[object, ...], bytes] = {}

    def format(self, events: Sequence[FsEvent]) -> bytes:
        """Return the text lines for ``events`` as one ``bytes`` object (UTF-8).

        Args:
            events: FsEvents in stream order.
        Returns:
            ``len(events)`` lines, each ending in ``\\n``.
        """
        try:
            plain = _is_plain(b"".join([e[0] for e in events]))  # type: ignore[misc]
        except TypeError:  # a Q_OVERFLOW event (path None) is in the batch
            plain = False
        if not plain:
            return b"".join([self._line(e) for e in events])
        get = self._heads.get
        return b"".join(
            [
                head + e[0] + b"\n" if (head := get(e[1:6])) is not None else self._line(e)  # type: ignore[operator]
                for e in events
            ]
        )

    def _head(self, event: FsEvent) -> bytes:
        """The padded mask column; cached for ordinary events."""
        head = self._heads.get(event[1:6])
        if head is not None:
            return head
        names = ",".join(mask_names(event.mask)) or hex(event.mask)
        if event.synthetic:
            names += " (scan)"
        head = f"{names:<{_TEXT_WIDTH}}".encode("ascii") + b" "
        if event.src_path is None and not event.cookie and not event.mask & _SPECIAL_BITS:
            if len(self._heads) >= _CACHE_LIMIT:
                self._heads.clear()
            self._heads[event[1:6]] = head
        return head

    def _line(self, event: FsEvent) -> bytes:
        """One text line for any event."""
        parts = [self._head(event)]
        if event.path is None:
            parts.append(b"(kernel queue overflowed; events were lost)")
        else:
            if event.src_path is not None:
                parts += (escape_text(event.src_path), b" -> ")
            parts.append(escape_text(event.path))
        if event.mask & Mask.ERROR:
            detail = f"{_errno_name(event.errno)}: {event.message or ''}"
            parts += (b" (", escape_text(detail.encode("utf-8", "surrogateescape")), b")")
        parts.append(b"\n")
        return b"".join(parts)
