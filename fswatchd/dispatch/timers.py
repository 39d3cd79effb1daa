"""Due times of pending entries: one heap, at most one armed timer on the injected clock."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import Generic, TypeVar

from ..workqueue import PendingEntry
from .model import Scheduler, TimerHandle

__all__ = ["DueTimer"]

R = TypeVar("R")

# asyncio may run a call_at() callback up to its clock resolution early; an entry due within
# this many seconds counts as due rather than re-arming a timer for a sliver of time.
_EARLY = 1e-6


class DueTimer(Generic[R]):
    """Calls ``on_due(entry)`` once a queued entry's ``due`` has come, then ``after()``.

    Args:
        scheduler: ``time()`` and ``call_at()``; the event loop or a fake clock.
        on_due: called with each entry whose due time came (still queued, not re-merged).
        after: called once after each firing, e.g. to start the jobs that became ready.

    A merge that moves an entry's ``due`` later adds nothing here: when the old time comes
    the entry is re-filed at its new ``due``. So there is at most one heap item per entry,
    whatever the event rate.
    """

    def __init__(
        self,
        scheduler: Scheduler,
        on_due: Callable[[PendingEntry[R]], None],
        after: Callable[[], None],
    ) -> None:
        self._scheduler = scheduler
        self._on_due = on_due
        self._after = after
        self._heap: list[tuple[float, int, PendingEntry[R]]] = []
        self._seq = itertools.count()
        self._timer: TimerHandle | None = None
        self._timer_at = 0.0

    def __len__(self) -> int:
        """Heap items (stale ones included)."""
        return len(self._heap)

    def add(self, entry: PendingEntry[R]) -> None:
        """Watch ``entry`` until its ``due`` (clock seconds)."""
        heapq.heappush(self._heap, (entry.due, next(self._seq), entry))
        self._arm(entry.due)

    def clear(self) -> None:
        """Forget every entry and cancel the armed timer."""
        self._heap.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self, when: float) -> None:
        """Make sure the timer fires at ``when`` or earlier."""
        if self._timer is not None:
            if self._timer_at <= when:
                return
            self._timer.cancel()
        self._timer_at = when
        self._timer = self._scheduler.call_at(when, self._fire)

    def _fire(self) -> None:
        """Timer callback: hand over the entries that are due; re-arm for the next."""
        self._timer = None
        limit = self._scheduler.time() + _EARLY
        heap = self._heap
        while heap and heap[0][0] <= limit:
            _, _, entry = heapq.heappop(heap)
            if not entry.queued:
                continue  # started or discarded since
            if entry.due > limit:  # merged since: its quiet period restarted
                heapq.heappush(heap, (entry.due, next(self._seq), entry))
            else:
                self._on_due(entry)
        if heap:
            self._arm(heap[0][0])
        self._after()
