"""Shared by the bench's peer scripts: the inotify(7) mask table and the output format.

Every streaming peer prints ``READY`` on stderr once its watches are in place, then one
line per event on stdout: ``NAMES<TAB>PATH[<TAB>DEST]`` where NAMES are inotify(7) event
names joined by commas (watchdog: its event type). Paths are written as raw bytes.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

__all__ = [
    "IN_ALL_EVENTS",
    "IN_DONT_FOLLOW",
    "IN_ONLYDIR",
    "MASK_NAMES",
    "flush",
    "names",
    "ready",
    "walk_dirs",
    "write_event",
]

MASK_NAMES = (
    (0x00000001, b"ACCESS"),
    (0x00000002, b"MODIFY"),
    (0x00000004, b"ATTRIB"),
    (0x00000008, b"CLOSE_WRITE"),
    (0x00000010, b"CLOSE_NOWRITE"),
    (0x00000020, b"OPEN"),
    (0x00000040, b"MOVED_FROM"),
    (0x00000080, b"MOVED_TO"),
    (0x00000100, b"CREATE"),
    (0x00000200, b"DELETE"),
    (0x00000400, b"DELETE_SELF"),
    (0x00000800, b"MOVE_SELF"),
    (0x00002000, b"UNMOUNT"),
    (0x00004000, b"Q_OVERFLOW"),
    (0x00008000, b"IGNORED"),
    (0x40000000, b"ISDIR"),
)
IN_ALL_EVENTS = 0x00000FFF
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
IN_ISDIR = 0x40000000
IN_CREATE = 0x00000100
IN_MOVED_TO = 0x00000080

_cache: dict[int, bytes] = {}


def names(mask: int) -> bytes:
    """Comma-joined inotify(7) names of ``mask``."""
    got = _cache.get(mask)
    if got is None:
        got = _cache[mask] = b",".join(n for bit, n in MASK_NAMES if mask & bit)
    return got


def write_event(out: list[bytes], kind: bytes, path: bytes, dest: bytes | None = None) -> None:
    """Append one output line to ``out`` (flushed by the caller once per read batch)."""
    out.append(kind + b"\t" + path + (b"\t" + dest if dest is not None else b"") + b"\n")


def flush(out: list[bytes]) -> None:
    """Write the batch to stdout in one call and clear it."""
    if out:
        sys.stdout.buffer.write(b"".join(out))
        sys.stdout.buffer.flush()
        out.clear()


def ready() -> None:
    """Tell the harness the watches are in place."""
    sys.stderr.write("READY\n")
    sys.stderr.flush()


def walk_dirs(root: bytes) -> Iterator[bytes]:
    """Every directory under ``root`` (included), without following symlinks."""
    stack = [root]
    while stack:
        d = stack.pop()
        yield d
        try:
            with os.scandir(d) as it:
                stack.extend(e.path for e in it if e.is_dir(follow_symlinks=False))
        except OSError:
            continue
