"""The dispatcher's store of pending work: jobs that are waiting, not yet started.

Work is kept in *lanes*, one per ``(rule name, key)``: the key is the event's absolute path
(or ``b""`` for a rule's batch). A lane is a FIFO of :class:`PendingEntry`; the dispatcher
starts a lane's head only when the lane is idle, which is what keeps one path's jobs in
order. Lanes whose head may start wait in a per-rule *ready* FIFO, so picking the next job
of a rule is O(1).

The store counts *units* of pending work per rule: one per per-path entry, one per distinct
path of a batch entry; ``queue_limit`` and the hard cap are checked against that count.

:class:`WorkQueue` is the interface the dispatcher uses; :class:`MemoryWorkQueue` is the
in-memory implementation. A durable implementation writes each push, merge and pop through
(the rule object of an entry is then re-resolved by ``rule_name`` when it is loaded).
"""

from __future__ import annotations

from collections import deque
from typing import Generic, Protocol, TypeVar

from .events import FsEvent

__all__ = ["BATCH_KEY", "MemoryWorkQueue", "PendingEntry", "WorkQueue"]

R = TypeVar("R")

#: The key of a rule's batch lane; never an absolute path.
BATCH_KEY = b""


class PendingEntry(Generic[R]):
    """One job-to-be: the latest event of a path (or a batch) plus how many it stands for.

    Attributes:
        rule: the rule object in force when the entry was created or last merged into; a
            reload does not change it.
        rule_name: ``rule``'s name, the lane's first half.
        key: the lane's second half: the event's absolute path, or ``b""`` for a batch.
        event: the latest event folded in.
        event_id: that event's id.
        root, relpath: where that event matched (exact bytes).
        merged: how many events the entry stands for (>= 1).
        paths: for a batch, its distinct paths in first-seen order (dict keys); else None.
        first_seen: clock time (seconds) of the first event.
        due: clock time (seconds) from which the entry may start (debounce, batch quiet).
        deadline: latest ``due`` a merge may push to (batch ``max_wait``); ``inf`` otherwise.
        depth: loop-protection chain depth (0 for a change not made by one of our jobs).
        self_caused: an event of the entry arrived while this rule's job for the same path
            ran, or shortly after it (see the dispatcher's loop protection).
        queued: the entry is still in the queue (False once popped or discarded).
    """

    __slots__ = (
        "_last",
        "_next",
        "deadline",
        "depth",
        "due",
        "event",
        "event_id",
        "first_seen",
        "key",
        "merged",
        "paths",
        "queued",
        "relpath",
        "root",
        "rule",
        "rule_name",
        "self_caused",
    )

    def __init__(
        self,
        rule: R,
        rule_name: str,
        key: bytes,
        event: FsEvent,
        *,
        event_id: str,
        root: bytes,
        relpath: bytes,
        now: float,
        due: float,
        deadline: float = float("inf"),
        batch: bool = False,
        depth: int = 0,
        self_caused: bool = False,
    ) -> None:
        self.rule = rule
        self.rule_name = rule_name
        self.key = key
        self.event = event
        self.event_id = event_id
        self.root = root
        self.relpath = relpath
        self.merged = 1
        self.paths: dict[bytes, None] | None = {event.path or b"": None} if batch else None
        self.first_seen = now
        self.due = due
        self.deadline = deadline
        self.depth = depth
        self.self_caused = self_caused
        self.queued = False
        # The lane is a singly linked list through the entries themselves: one object per
        # pending job, no deque per path. ``_last`` is meaningful on a lane's head only.
        self._next: PendingEntry[R] | None = None
        self._last: PendingEntry[R] = self

    @property
    def weight(self) -> int:
        """Units of pending work: the number of distinct paths of a batch, else 1."""
        return len(self.paths) if self.paths is not None else 1

    def __repr__(self) -> str:
        return (
            f"PendingEntry({self.rule_name!r}, {self.key!r}, {self.event_id!r}, "
            f"merged={self.merged}, due={self.due})"
        )


class WorkQueue(Protocol[R]):
    """What the dispatcher needs from a store of pending work (see the module docstring)."""

    def push(self, entry: PendingEntry[R]) -> None:
        """Append ``entry`` at the tail of its lane ``(entry.rule_name, entry.key)``."""
        ...

    def merge(
        self,
        entry: PendingEntry[R],
        rule: R,
        event: FsEvent,
        *,
        event_id: str,
        root: bytes,
        relpath: bytes,
        due: float,
        depth: int = 0,
        self_caused: bool = False,
    ) -> None:
        """Fold one more event into the queued ``entry``: latest event wins, merged += 1.

        For a batch entry the event's path is added to ``paths`` if new. ``due`` (seconds,
        clock time) replaces the entry's; ``depth`` raises it; ``self_caused`` is or-ed in.
        """
        ...

    def head(self, rule_name: str, key: bytes) -> PendingEntry[R] | None:
        """The oldest pending entry of the lane, or None."""
        ...

    def tail(self, rule_name: str, key: bytes) -> PendingEntry[R] | None:
        """The newest pending entry of the lane, or None."""
        ...

    def mark_ready(self, rule_name: str, key: bytes) -> bool:
        """Let the lane's head start: put the lane on the rule's ready FIFO (idempotent).

        Returns True if the lane was added, False if already there or empty.
        """
        ...

    def pop_ready(self, rule_name: str) -> PendingEntry[R] | None:
        """Remove and return the head of the rule's first ready lane, or None."""
        ...

    def has_ready(self, rule_name: str) -> bool:
        """True if the rule has a lane whose head may start."""
        ...

    def pending(self, rule_name: str) -> int:
        """Units of pending work of the rule (see the module docstring)."""
        ...

    def clear(self) -> int:
        """Drop every pending entry; returns how many entries were dropped."""
        ...

    def __len__(self) -> int:
        """Number of pending entries of all rules."""
        ...


class MemoryWorkQueue(Generic[R]):
    """:class:`WorkQueue` in memory: a dict of lanes, per-rule ready FIFOs and counters.

    Every operation is O(1) (a batch merge hashes one path).
    """

    def __init__(self) -> None:
        self._lanes: dict[tuple[str, bytes], PendingEntry[R]] = {}
        self._ready: dict[str, deque[bytes]] = {}
        self._is_ready: set[tuple[str, bytes]] = set()
        self._units: dict[str, int] = {}
        self._entries = 0

    def push(self, entry: PendingEntry[R]) -> None:
        """See :meth:`WorkQueue.push`."""
        lane = (entry.rule_name, entry.key)
        head = self._lanes.get(lane)
        if head is None:
            self._lanes[lane] = entry
        else:
            head._last._next = entry
            head._last = entry
        entry.queued = True
        self._entries += 1
        self._units[entry.rule_name] = self._units.get(entry.rule_name, 0) + entry.weight

    def merge(
        self,
        entry: PendingEntry[R],
        rule: R,
        event: FsEvent,
        *,
        event_id: str,
        root: bytes,
        relpath: bytes,
        due: float,
        depth: int = 0,
        self_caused: bool = False,
    ) -> None:
        """See :meth:`WorkQueue.merge`."""
        entry.rule = rule
        entry.event = event
        entry.event_id = event_id
        entry.root = root
        entry.relpath = relpath
        entry.merged += 1
        entry.due = due
        entry.depth = max(entry.depth, depth)
        entry.self_caused = entry.self_caused or self_caused
        paths = entry.paths
        if paths is not None:
            path = event.path or b""
            if path not in paths:
                paths[path] = None
                self._units[entry.rule_name] += 1

    def head(self, rule_name: str, key: bytes) -> PendingEntry[R] | None:
        """See :meth:`WorkQueue.head`."""
        return self._lanes.get((rule_name, key))

    def tail(self, rule_name: str, key: bytes) -> PendingEntry[R] | None:
        """See :meth:`WorkQueue.tail`."""
        head = self._lanes.get((rule_name, key))
        return None if head is None else head._last

    def mark_ready(self, rule_name: str, key: bytes) -> bool:
        """See :meth:`WorkQueue.mark_ready`."""
        lane = (rule_name, key)
        if lane in self._is_ready or lane not in self._lanes:
            return False
        self._is_ready.add(lane)
        self._ready.setdefault(rule_name, deque()).append(key)
        return True

    def pop_ready(self, rule_name: str) -> PendingEntry[R] | None:
        """See :meth:`WorkQueue.pop_ready`."""
        ready = self._ready.get(rule_name)
        if not ready:
            return None
        key = ready.popleft()
        if not ready:
            del self._ready[rule_name]
        lane = (rule_name, key)
        self._is_ready.discard(lane)
        entry = self._lanes[lane]
        if entry._next is None:
            del self._lanes[lane]
        else:
            self._lanes[lane] = entry._next
            entry._next._last = entry._last
        self._forget(entry)
        return entry

    def has_ready(self, rule_name: str) -> bool:
        """See :meth:`WorkQueue.has_ready`."""
        return rule_name in self._ready

    def pending(self, rule_name: str) -> int:
        """See :meth:`WorkQueue.pending`."""
        return self._units.get(rule_name, 0)

    def clear(self) -> int:
        """See :meth:`WorkQueue.clear`."""
        dropped = self._entries
        for head in self._lanes.values():
            entry: PendingEntry[R] | None = head
            while entry is not None:
                entry.queued = False
                entry = entry._next
        self._lanes.clear()
        self._ready.clear()
        self._is_ready.clear()
        self._units.clear()
        self._entries = 0
        return dropped

    def __len__(self) -> int:
        """See :meth:`WorkQueue.__len__`."""
        return self._entries

    def _forget(self, entry: PendingEntry[R]) -> None:
        """Unaccount a popped entry."""
        entry.queued = False
        entry._next = None
        entry._last = entry
        self._entries -= 1
        left = self._units[entry.rule_name] - entry.weight
        if left:
            self._units[entry.rule_name] = left
        else:
            del self._units[entry.rule_name]
