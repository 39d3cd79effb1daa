"""The dispatcher's inputs and outputs: rule runtime, settings, stats, clock seam, event ids.

The supervisor builds one :class:`DispatchRule` per configured rule (its limits plus its
built :class:`~fswatchd.actions.base.Action` objects) and passes it with every match to
:meth:`Dispatcher.submit`. :class:`RuleRuntime` is a ready-made frozen implementation.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from ..actions.base import Action
from ..events import FsEvent

__all__ = [
    "DispatchRule",
    "DispatchSettings",
    "DispatchStats",
    "EventIds",
    "MatchLike",
    "RuleRuntime",
    "Scheduler",
    "TimerHandle",
]

OnBusy = Literal["queue", "coalesce"]


class DispatchRule(Protocol):
    """What the dispatcher reads from a rule (all times in seconds).

    Attributes:
        name: the rule's name; the unit of limits, queues and log fields.
        debounce: run once a path has been quiet this long; 0 = off.
        batch: ``(quiet, max_wait)``: one job for all paths once quiet ``quiet`` seconds or
            ``max_wait`` after the batch's first event; None = per-path jobs.
        concurrency: jobs of this rule running at once (>= 1).
        on_busy: ``"queue"`` (every event runs, in order per path) or ``"coalesce"``
            (events for a pending path merge into one entry).
        queue_limit: pending units (see ``fswatchd.workqueue``) beyond which events for a
            pending path merge; 10x this is the hard cap (>= 1).
        stop_on_failure: a failed action skips the job's later actions.
        actions: run in this order for each job.
    """

    @property
    def name(self) -> str: ...
    @property
    def debounce(self) -> float: ...
    @property
    def batch(self) -> tuple[float, float] | None: ...
    @property
    def concurrency(self) -> int: ...
    @property
    def on_busy(self) -> OnBusy: ...
    @property
    def queue_limit(self) -> int: ...
    @property
    def stop_on_failure(self) -> bool: ...
    @property
    def actions(self) -> Sequence[Action]: ...


@dataclass(frozen=True, slots=True)
class RuleRuntime:
    """A frozen :class:`DispatchRule`; the supervisor builds one per rule and reload."""

    name: str
    actions: Sequence[Action]
    debounce: float = 0.0
    batch: tuple[float, float] | None = None
    concurrency: int = 4
    on_busy: OnBusy = "queue"
    queue_limit: int = 1000
    stop_on_failure: bool = True


class MatchLike(Protocol):
    """What the dispatcher reads from a rule match: where and what (paths are bytes)."""

    @property
    def root(self) -> bytes: ...
    @property
    def relpath(self) -> bytes: ...
    @property
    def event(self) -> FsEvent: ...


class TimerHandle(Protocol):
    """A scheduled callback that can be cancelled (``asyncio.TimerHandle``)."""

    def cancel(self) -> None: ...


class Scheduler(Protocol):
    """The clock seam: ``asyncio.AbstractEventLoop`` fits; tests pass a fake clock.

    ``time()`` is monotonic seconds; ``call_at(when, callback)`` runs ``callback`` once,
    soon after ``time() >= when``.
    """

    def time(self) -> float: ...
    def call_at(self, when: float, callback: Callable[[], object]) -> TimerHandle: ...


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    """Daemon-wide dispatcher knobs (seconds and counts).

    Attributes:
        max_actions: jobs running at once across all rules.
        loop_window: an event for a path within this long after (or while) the same rule's
            job for that path ran counts as caused by that job.
        loop_limit: consecutive self-caused jobs allowed per rule and path; the next is
            suppressed and the path paused until quiet for ``loop_window``. 0 = off.
        max_chain: deepest chain of derived files (``a`` -> ``a.out`` -> ``a.out.out``)
            a rule may act on; deeper events are dropped. 0 = off.
        hard_cap_factor: pending units may reach ``queue_limit`` times this before events
            for new paths are dropped.
    """

    max_actions: int = 32
    loop_window: float = 1.0
    loop_limit: int = 3
    max_chain: int = 8
    hard_cap_factor: int = 10


@dataclass(frozen=True, slots=True)
class DispatchStats:
    """Counters for the STATUS line and tests (all counts since start).

    Attributes:
        running: jobs running now.
        queued: pending entries now (debouncing, batching or waiting for a slot).
        done: jobs finished (ok or not; cancelled jobs excluded).
        failed: finished jobs with at least one failed outcome.
        crashed: actions that raised instead of returning an Outcome.
        merged: events folded into an already pending entry.
        dropped: events dropped because the rule's queue reached its hard cap.
        suppressed: events and jobs withheld by loop protection.
        refused: events submitted after :meth:`Dispatcher.drain` began.
        discarded: pending entries dropped, never started, at drain or cancel.
        cancelled: running jobs cancelled by :meth:`Dispatcher.cancel_all`.
    """

    running: int = 0
    queued: int = 0
    done: int = 0
    failed: int = 0
    crashed: int = 0
    merged: int = 0
    dropped: int = 0
    suppressed: int = 0
    refused: int = 0
    discarded: int = 0
    cancelled: int = 0


class EventIds:
    """Event ids unique across restarts: ``"<12 hex digits>-<n>"``.

    The prefix is random per process start (``uuid4().hex[:12]``, 48 bits: over n starts
    two share a prefix with probability about n**2 / 2**49); ``n`` counts from 1.
    """

    __slots__ = ("_counter", "prefix")

    def __init__(self, prefix: str | None = None) -> None:
        self.prefix = prefix if prefix is not None else uuid.uuid4().hex[:12]
        self._counter = itertools.count(1)

    def next(self) -> str:
        """A new id (str)."""
        return f"{self.prefix}-{next(self._counter)}"
