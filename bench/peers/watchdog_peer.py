"""watchdog's inotify Observer, recursive, printing each event it dispatches.

usage: watchdog_peer.py ROOT   (output: see _common; the kind is watchdog's event_type)
"""

from __future__ import annotations

import os
import sys
import threading

from _common import ready
from watchdog.events import FileSystemEvent, FileSystemEventHandler  # type: ignore[import-not-found]
from watchdog.observers.inotify import InotifyObserver  # type: ignore[import-not-found]

__all__ = ["main"]


class Printer(FileSystemEventHandler):  # type: ignore[misc]
    """Writes one line per event; a line per write is what a watchdog user gets."""

    def on_any_event(self, event: FileSystemEvent) -> None:
        line = event.event_type.encode() + b"\t" + os.fsencode(event.src_path)
        if event.dest_path:
            line += b"\t" + os.fsencode(event.dest_path)
        sys.stdout.buffer.write(line + b"\n")
        sys.stdout.buffer.flush()


def main() -> int:
    """Watch sys.argv[1] until killed."""
    observer = InotifyObserver()
    observer.schedule(Printer(), sys.argv[1], recursive=True)
    # start() runs each emitter's on_thread_start in this thread: the watches exist after it.
    observer.start()
    ready()
    threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
