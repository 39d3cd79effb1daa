"""How many inotify watches a rule set needs: one per directory the watcher would watch.

A bounded walk (time budget, injected clock) over the roots with the rule set's pruning,
to compare against ``fs.inotify.max_user_watches`` before the daemon runs into ENOSPC.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable
from typing import NamedTuple

from .ruleset import RuleSet

__all__ = ["Estimate", "count_watches"]


class Estimate(NamedTuple):
    """The result of :func:`count_watches`.

    Attributes:
        dirs: directories counted, roots included (a lower bound when not complete).
        complete: the walk finished within its time budget.
        unreadable: directories that could not be listed (EACCES, vanished, ...).
    """

    dirs: int
    complete: bool
    unreadable: int


def count_watches(
    ruleset: RuleSet, *, budget: float = 2.0, clock: Callable[[], float] = time.monotonic
) -> Estimate:
    """Count the directories under ``ruleset.roots()`` that ``should_watch`` keeps.

    Args:
        ruleset: the rules.
        budget: seconds to spend at most; the count is a lower bound if exceeded.
        clock: monotonic clock in seconds (a seam for tests).
    Returns:
        an :class:`Estimate`. Symbolic links are not followed (as the watcher does not).
        Roots that do not exist are not counted. Never raises for I/O errors.
    """
    deadline = clock() + budget
    pending: deque[bytes] = deque()
    dirs = unreadable = 0
    for path, recursive in ruleset.roots():
        if os.path.isdir(path):
            dirs += 1
            if recursive:
                pending.append(path)
    while pending:
        if clock() > deadline:
            return Estimate(dirs, False, unreadable)
        top = pending.popleft()
        try:
            with os.scandir(top) as it:
                subdirs = [e.path for e in it if e.is_dir(follow_symlinks=False)]
        except OSError:
            unreadable += 1
            continue
        for sub in subdirs:
            if ruleset.should_watch(sub):
                dirs += 1
                pending.append(sub)
    return Estimate(dirs, True, unreadable)
