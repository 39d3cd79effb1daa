"""The two event types that flow through fswatchd's pipeline.

``RawEvent`` is one ``struct inotify_event`` record as the kernel wrote it (inotify(7)).
``FsEvent`` is what the RecursiveWatcher makes of raw events: an absolute path derived from
the watch tree at the event's position in the stream, with renames paired and scans marked.

Both are ``NamedTuple``s: immutable, cheap to build (they are made once per kernel record,
hundreds of thousands per second during a backlog drain) and typed. Masks are plain ``int``
on the hot path; :class:`~fswatchd._inotify.flags.Mask` names them at the edges.
Paths are ``bytes`` end to end: Linux file names are bytes, not text.
"""

from __future__ import annotations

from typing import NamedTuple

from ._inotify.flags import Cookie as Cookie
from ._inotify.flags import Mask as Mask
from ._inotify.flags import Wd as Wd
from ._inotify.flags import mask_names as mask_names

__all__ = ["Cookie", "FsEvent", "Mask", "RawEvent", "Wd", "mask_names", "show_path"]


class RawEvent(NamedTuple):
    """One inotify(7) record.

    Attributes:
        wd: the watch descriptor the event is for; -1 for ``IN_Q_OVERFLOW``.
        mask: the event bits (``Mask`` values as an int).
        cookie: ties MOVED_FROM to MOVED_TO; 0 for other events.
        name: the child's name, NUL padding removed; ``b""`` for events on the watched
            object itself.
    """

    wd: int
    mask: int
    cookie: int
    name: bytes


class FsEvent(NamedTuple):
    """A file event with its absolute path, as the RecursiveWatcher reports it.

    Attributes:
        path: absolute path, exact bytes; ``None`` only for ``Q_OVERFLOW``.
        mask: event bits as an int (``Mask``), ``ISDIR`` included for directories;
            ``Mask.ERROR`` for a directory that could not be watched.
        is_dir: the subject is a directory (``mask & ISDIR``, spelled out).
        src_path: for a paired rename (one ``MOVED_TO`` event), the old path; else ``None``.
        synthetic: made by a scan (new directory, moved-in directory, overflow repair),
            not read from the kernel.
        cookie: the kernel's rename cookie, 0 when none.
        root: the configured root the path lies under (exact bytes), ``None`` for overflow.
        errno: for ``ERROR`` events, the errno that stopped the watch (e.g. ``errno.ENOSPC``).
        message: for ``ERROR`` events, a sentence naming the path and the remedy.
    """

    path: bytes | None
    mask: int
    is_dir: bool = False
    src_path: bytes | None = None
    synthetic: bool = False
    cookie: int = 0
    root: bytes | None = None
    errno: int = 0
    message: str | None = None


#: Control characters as ``\xNN``: a file name holding a newline must neither forge a line
#: in a text log nor split the journal's MESSAGE.
_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F)}


def show_path(path: bytes | str) -> str:
    """``path`` (or any text from outside: a child's output, an HTTP reason) for a one-line
    log message: bytes that are not UTF-8 as ``\\xNN`` (backslashreplace), control
    characters (newline, CR, ESC...) as ``\\xNN``, so it can neither forge a record nor
    drive a terminal. For people, not for parsing: structured fields (``FSWATCHD_PATH``)
    carry the exact bytes."""
    text = path if isinstance(path, str) else path.decode(errors="backslashreplace")
    return text.translate(_CONTROL)
