"""asyncinotify as a recursive watcher: walk + add_watch, then the async event iterator.

usage: asyncinotify_peer.py ROOT   (output: see _common)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from pathlib import Path

from _common import flush, names, ready, walk_dirs, write_event
from asyncinotify import Inotify, Mask  # type: ignore[import-not-found]

__all__ = ["main"]

MASK = Mask.ONLYDIR | Mask.DONT_FOLLOW | Mask(0xFFF)


async def watch(root: str) -> None:
    """Print every event under ``root``; a new directory gets a watch."""
    with Inotify() as inotify:
        for d in walk_dirs(os.fsencode(root)):
            try:
                inotify.add_watch(Path(os.fsdecode(d)), MASK)
            except OSError:
                continue
        ready()
        out: list[bytes] = []
        async for ev in inotify:
            path = os.fsencode(ev.path) if ev.path is not None else b""
            write_event(out, names(int(ev.mask)), path)
            if ev.mask & Mask.ISDIR and ev.mask & (Mask.CREATE | Mask.MOVED_TO):
                with contextlib.suppress(OSError):
                    inotify.add_watch(ev.path, MASK)
            # The iterator yields one event at a time; flush when no more are buffered.
            if len(out) >= 512 or not inotify._events:
                flush(out)


def main() -> int:
    """Watch sys.argv[1] until killed."""
    asyncio.run(watch(sys.argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
