"""inotify(7) flag values: the event mask bits, the add_watch bits and inotify_init1 flags.

Names and values follow ``<sys/inotify.h>`` and inotify(7). ``Mask`` is an ``IntFlag`` for
readability at the edges (config, CLI, logs); the hot path carries plain ``int`` masks and
converts with :func:`mask_names` only when it prints.
"""

from __future__ import annotations

import enum
import functools
import os
from typing import NewType

__all__ = [
    "EVENT_BITS",
    "SUBSCRIBABLE_NAMES",
    "Cookie",
    "InitFlag",
    "Mask",
    "Wd",
    "mask_names",
    "parse_mask",
]

#: A watch descriptor as returned by inotify_add_watch(2); -1 marks an overflow record.
Wd = NewType("Wd", int)
#: The cookie that ties the two halves of a rename together (0 for other events).
Cookie = NewType("Cookie", int)


class Mask(enum.IntFlag):
    """inotify(7) event and watch bits, with the kernel's names.

    ``ERROR`` is the one member that is not a kernel bit: fswatchd uses it on the events
    that report a directory it could not watch (ENOSPC, EACCES).
    """

    ACCESS = 0x00000001  #: file was read
    MODIFY = 0x00000002  #: file was written
    ATTRIB = 0x00000004  #: metadata changed (permissions, timestamps, xattrs, link count)
    CLOSE_WRITE = 0x00000008  #: file opened for writing was closed
    CLOSE_NOWRITE = 0x00000010  #: file or directory not opened for writing was closed
    OPEN = 0x00000020  #: file or directory was opened
    MOVED_FROM = 0x00000040  #: a name left the watched directory (rename source)
    MOVED_TO = 0x00000080  #: a name arrived in the watched directory (rename target)
    CREATE = 0x00000100  #: file or directory created in the watched directory
    DELETE = 0x00000200  #: file or directory deleted from the watched directory
    DELETE_SELF = 0x00000400  #: the watched object itself was deleted
    MOVE_SELF = 0x00000800  #: the watched object itself was moved
    UNMOUNT = 0x00002000  #: the filesystem holding the watched object was unmounted
    Q_OVERFLOW = 0x00004000  #: the event queue overflowed (wd is -1)
    IGNORED = 0x00008000  #: the watch was removed (explicitly, or the object is gone)
    ERROR = 0x00100000  #: fswatchd's own: a directory could not be watched
    ONLYDIR = 0x01000000  #: add_watch: only watch the path if it is a directory
    DONT_FOLLOW = 0x02000000  #: add_watch: do not dereference a symbolic link
    EXCL_UNLINK = 0x04000000  #: add_watch: no events for children after they are unlinked
    MASK_CREATE = 0x10000000  #: add_watch: fail with EEXIST if the inode is already watched
    MASK_ADD = 0x20000000  #: add_watch: OR the mask into an existing watch's mask
    ISDIR = 0x40000000  #: the subject of this event is a directory
    ONESHOT = 0x80000000  #: add_watch: remove the watch after one event

    CLOSE = CLOSE_WRITE | CLOSE_NOWRITE  #: either close
    MOVE = MOVED_FROM | MOVED_TO  #: either half of a rename
    ALL = (
        ACCESS
        | MODIFY
        | ATTRIB
        | CLOSE_WRITE
        | CLOSE_NOWRITE
        | OPEN
        | MOVED_FROM
        | MOVED_TO
        | CREATE
        | DELETE
        | DELETE_SELF
        | MOVE_SELF
    )  #: every event a watch can subscribe to (IN_ALL_EVENTS)


class InitFlag(enum.IntFlag):
    """inotify_init1(2) flags; the kernel defines them as O_CLOEXEC and O_NONBLOCK."""

    CLOEXEC = os.O_CLOEXEC
    NONBLOCK = os.O_NONBLOCK


#: Single-bit members reported in events, in the order names are printed (ISDIR last).
EVENT_BITS: tuple[Mask, ...] = (
    Mask.ACCESS,
    Mask.MODIFY,
    Mask.ATTRIB,
    Mask.CLOSE_WRITE,
    Mask.CLOSE_NOWRITE,
    Mask.OPEN,
    Mask.MOVED_FROM,
    Mask.MOVED_TO,
    Mask.CREATE,
    Mask.DELETE,
    Mask.DELETE_SELF,
    Mask.MOVE_SELF,
    Mask.UNMOUNT,
    Mask.Q_OVERFLOW,
    Mask.IGNORED,
    Mask.ERROR,
    Mask.ISDIR,
)

#: The names a watch can subscribe to (inotify_add_watch(2)'s event bits, then the
#: CLOSE, MOVE and ALL aliases), comma-separated, for error messages.
SUBSCRIBABLE_NAMES = ", ".join(
    [str(bit.name) for bit in EVENT_BITS if bit & Mask.ALL] + ["CLOSE", "MOVE", "ALL"]
)


@functools.lru_cache(maxsize=1024)
def mask_names(mask: int) -> tuple[str, ...]:
    """Names of the event bits set in ``mask``, e.g. ``("MOVED_TO", "ISDIR")``.

    Args:
        mask: an event mask as an int (kernel bits plus ``Mask.ERROR``).
    Returns:
        the names in :data:`EVENT_BITS` order; bits that are not event bits are left out.
        Cached: masks repeat, and this is called once per printed event.
    """
    return tuple(bit.name for bit in EVENT_BITS if mask & bit and bit.name is not None)


def parse_mask(text: str) -> Mask:
    """Parse ``"CLOSE_WRITE,moved_to"`` (names case-insensitive, ``IN_`` prefix optional).

    Args:
        text: comma-separated Mask member names, including CLOSE, MOVE and ALL.
    Returns:
        the OR of the named members.
    Raises:
        ValueError: a name that is not a ``Mask`` member; the message lists the valid names.
    """
    result = Mask(0)
    for raw in text.split(","):
        name = raw.strip().upper().removeprefix("IN_")
        if not name:
            continue
        try:
            result |= Mask[name]
        except KeyError:
            valid = ", ".join(m for m in Mask.__members__)
            msg = f"unknown inotify event name {raw.strip()!r}; valid: {valid}"
            raise ValueError(msg) from None
    return result
