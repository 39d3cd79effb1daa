"""File records kept current: stale ones refreshed when idle; walk records judged by ctime.

A record goes stale when an event says the file changed (CREATE, MODIFY, CLOSE_WRITE,
ATTRIB): :func:`settle` lstats those files while the watcher is idle, so a later overflow
resync compares against current facts.

The initial walk records each file from readdir(3) alone: inode and kind (``d_ino``,
``d_type``; ``tree.walk_record``). An lstat(2) per file would be half the time to READY on
a large tree, and a record with size and mtime costs 48 bytes where the walk record costs
9 in a packed listing (``tree.pack_listing``), 32 once unpacked. Such a record stays until
an event makes it stale (then :func:`settle` lstats the file) or an overflow resync reads
the file in full.

The resync has no size and mtime to compare for it, and asks the file's ctime instead
(inode(7): every write and every metadata change sets it to the current time, and no
system call can set it back): a file whose ctime is older than the walk's start did not
change while it was watched. A ctime from at most :data:`WALK_SLACK_NS` before the walk,
or any ctime once the realtime clock has been stepped back since the walk, counts as a
change: a possible duplicate MODIFY, never a miss.
"""

from __future__ import annotations

import os
import time

from .place import Placer
from .scan import stat_record

__all__ = ["WALK_SLACK_NS", "changed_since_walk", "settle"]

#: Nanoseconds before the walk's start that a ctime still counts as "after": file system
#: timestamps come from the kernel's coarse clock, up to one scheduler tick (10 ms at
#: HZ=100) behind ``time.time_ns()``; ten ticks leave room for a slewed clock too.
WALK_SLACK_NS = 100_000_000


def changed_since_walk(path: bytes, walk_clock: tuple[int, int] | None) -> bool:
    """Whether the file at ``path`` may have changed since the walk began (module docstring).

    Args:
        path: the file (absolute, bytes); never followed if a symbolic link.
        walk_clock: ``Placer.walk_clock``, (CLOCK_REALTIME, CLOCK_MONOTONIC) in ns at the
            walk's start; None = unknown.
    Returns:
        False only when the file's ctime proves it unchanged since the walk.
    """
    if walk_clock is None:
        return True
    walk_ns, walk_mono = walk_clock
    # Realtime minus monotonic only grows (suspend) unless the clock is stepped back; a
    # step back would let a later change carry a ctime from before the walk.
    if time.time_ns() - time.monotonic_ns() < walk_ns - walk_mono - WALK_SLACK_NS:
        return True
    try:
        ctime = os.lstat(path).st_ctime_ns
    except OSError:
        return True
    return ctime >= walk_ns - WALK_SLACK_NS


def settle(placer: Placer, budget: int) -> int:
    """lstat up to ``budget`` files whose records are stale; how many directories remain.

    Run only while the watcher is idle (nothing read and nothing queued in the kernel): an
    lstat sees the present, and events still queued describe the past; applying them to
    a record read after them would mix the two. A file gone meanwhile keeps its stale
    record until its DELETE arrives.

    Args:
        placer: the watcher's Placer (``placer.dirty``: directories with stale records,
            each listing them in ``Node.dirty``).
        budget: lstat(2) calls to make at most (about: a directory's names are done whole).
    Returns:
        the number of directories still holding stale records.
    """
    join = placer.tree.path
    dirty = placer.dirty
    while dirty and budget > 0:
        node = dirty.pop()
        names = node.dirty or set()
        node.dirty = None
        if not node.attached:
            continue
        base = join(node) + b"/"
        files = node.files
        for name in names:
            budget -= 1
            if name not in files:
                continue
            try:
                files[name] = stat_record(os.lstat(base + name))
            except OSError:
                continue
    return len(dirty)
