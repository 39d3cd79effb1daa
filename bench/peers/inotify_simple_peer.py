"""inotify_simple as a recursive watcher: walk + add_watch, then read() batches.

usage: inotify_simple_peer.py ROOT   (output: see _common)
"""

from __future__ import annotations

import contextlib
import os
import sys

from _common import flush, names, ready, walk_dirs, write_event
from inotify_simple import INotify, flags  # type: ignore[import-not-found]

__all__ = ["main"]

MASK = flags.ONLYDIR | flags.DONT_FOLLOW | 0xFFF


def main() -> int:
    """Watch sys.argv[1] until killed."""
    inotify = INotify()
    wds: dict[int, bytes] = {}
    for d in walk_dirs(os.fsencode(sys.argv[1])):
        try:
            wds[inotify.add_watch(d, MASK)] = d
        except OSError:
            continue
    ready()
    out: list[bytes] = []
    while True:
        for ev in inotify.read():
            base = wds.get(ev.wd, b"")
            name = os.fsencode(ev.name)
            path = base + b"/" + name if name else base
            write_event(out, names(ev.mask), path)
            if ev.mask & flags.ISDIR and ev.mask & (flags.CREATE | flags.MOVED_TO):
                with contextlib.suppress(OSError):
                    wds[inotify.add_watch(path, MASK)] = path
        flush(out)


if __name__ == "__main__":
    sys.exit(main())
