"""The reference watcher: the least a Python program must do to watch a tree with inotify(7).

usage: ref_reader.py ROOT

Walks ROOT, calls inotify_add_watch on every directory (IN_ALL_EVENTS|IN_ONLYDIR|
IN_DONT_FOLLOW), prints READY on stderr, then reads the fd in 64 KiB blocks and prints
one line per event (see _common). New directories get a watch (no scan: what was created
in them before the watch is missed, as in inotifywait). Stdlib only, so it is always there.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import struct
import sys

from _common import (
    IN_ALL_EVENTS,
    IN_CREATE,
    IN_DONT_FOLLOW,
    IN_ISDIR,
    IN_MOVED_TO,
    IN_ONLYDIR,
    flush,
    names,
    ready,
    walk_dirs,
    write_event,
)

__all__ = ["main"]

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
_HEADER = struct.Struct("iIII")
_WATCH_MASK = IN_ALL_EVENTS | IN_ONLYDIR | IN_DONT_FOLLOW


def add_watch(fd: int, path: bytes, wds: dict[int, bytes]) -> None:
    """inotify_add_watch(2); a directory that vanished or cannot be watched is skipped."""
    wd = _libc.inotify_add_watch(fd, path, _WATCH_MASK)
    if wd >= 0:
        wds[wd] = path


def main() -> int:
    """Watch sys.argv[1] until killed."""
    root = os.fsencode(sys.argv[1])
    fd = _libc.inotify_init1(os.O_CLOEXEC)
    if fd < 0:
        raise OSError(ctypes.get_errno(), "inotify_init1")
    wds: dict[int, bytes] = {}
    for d in walk_dirs(root):
        add_watch(fd, d, wds)
    ready()
    out: list[bytes] = []
    while buf := os.read(fd, 65536):
        pos = 0
        while pos < len(buf):
            wd, mask, _cookie, size = _HEADER.unpack_from(buf, pos)
            name = buf[pos + 16 : pos + 16 + size].rstrip(b"\0")
            pos += 16 + size
            base = wds.get(wd, b"")
            path = base + b"/" + name if name else base
            write_event(out, names(mask), path)
            if mask & IN_ISDIR and mask & (IN_CREATE | IN_MOVED_TO):
                add_watch(fd, path, wds)
        flush(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
