"""File records after a walk without lstat: completed when idle, judged by ctime meanwhile.

The initial walk records each file from readdir(3) alone (inode and kind, ``d_ino`` and
``d_type``; see ``scan.read_dir``): an lstat(2) per file would be half the time to READY on
a large tree. Size and mtime, which the overflow resync compares, are filled in after READY
by :func:`complete_records`, a budget at a time while the watcher is idle.

An overflow before that has no size and mtime to compare for those files. It asks the
file's ctime instead (inode(7): every write, and every metadata change, sets it to the
current time, and no system call can set it back): a file whose ctime is older than the
walk's start did not change while it was watched. A ctime at most :data:`WALK_SLACK_NS`
before the walk, or any ctime once the clock has gone back past the walk's start, counts as
a change: a possible duplicate MODIFY, never a miss.
"""

from __future__ import annotations

import os
import time

from .place import Placer
from .scan import stat_record

__all__ = ["WALK_SLACK_NS", "changed_since_walk", "complete_records"]

#: Nanoseconds before the walk's start that a ctime still counts as "after": file system
#: timestamps come from the kernel's coarse clock, up to one scheduler tick (10 ms at
#: HZ=100) behind ``time.time_ns()``; ten ticks leave room for a slewed clock too.
WALK_SLACK_NS = 100_000_000


def complete_records(placer: Placer, budget: int) -> int:
    """lstat the files of walked directories (``placer.unstated``), about ``budget`` of them.

    Each record from the walk gets its size and mtime; records that events made dirty
    meanwhile are left to ``Engine.settle``. Like it, call only while the watcher is idle
    (nothing read and nothing queued in the kernel), so an lstat never sees a state that
    older, still unprocessed events would then be applied on top of.

    Args:
        placer: the watcher's Placer.
        budget: about how many lstat(2) calls to make (a directory is done whole).
    Returns:
        the number of directories still waiting (0: every record is complete).
    """
    unstated = placer.unstated
    path = placer.tree.path
    while unstated and budget > 0:
        node = unstated.pop()
        if not node.attached:
            continue
        files, dirty = node.files, node.dirty or ()
        base = path(node) + b"/"
        for name in [n for n, rec in files.items() if not rec & 1 and n not in dirty]:
            budget -= 1
            try:
                files[name] = stat_record(os.lstat(base + name))
            except OSError:
                continue  # gone: its DELETE event follows
    return len(unstated)


def changed_since_walk(path: bytes, walk_ns: int | None) -> bool:
    """Whether the file at ``path`` may have changed since the walk began (module docstring).

    Args:
        path: the file (absolute, bytes); never followed if a symbolic link.
        walk_ns: ``placer.walk_ns``, CLOCK_REALTIME nanoseconds; None = unknown.
    Returns:
        False only when the file's ctime proves it unchanged since the walk.
    """
    if walk_ns is None or time.time_ns() < walk_ns:
        return True
    try:
        ctime = os.lstat(path).st_ctime_ns
    except OSError:
        return True
    return ctime >= walk_ns - WALK_SLACK_NS
