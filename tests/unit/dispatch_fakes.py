"""Seams for the dispatcher tests: a fake clock, recording actions, matches, a harness."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, NamedTuple

from fswatchd.actions.base import Job, Outcome
from fswatchd.dispatch import Dispatcher, DispatchSettings, EventIds, RuleRuntime
from fswatchd.events import FsEvent, Mask

__all__ = [
    "FakeAction",
    "FakeClock",
    "M",
    "Tracker",
    "make",
    "match",
    "rule",
    "running",
    "settle",
    "until",
]


class _Handle:
    __slots__ = ("callback", "cancelled")

    def __init__(self, callback: Callable[[], object]) -> None:
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """A Scheduler whose time moves only on advance(); due callbacks run inside advance()."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self._timers: list[tuple[float, int, _Handle]] = []
        self._seq = itertools.count()

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], object]) -> _Handle:
        handle = _Handle(callback)
        heapq.heappush(self._timers, (when, next(self._seq), handle))
        return handle

    def advance(self, seconds: float) -> None:
        target = self.now + seconds
        while self._timers and self._timers[0][0] <= target:
            when, _, handle = heapq.heappop(self._timers)
            self.now = max(self.now, when)
            if not handle.cancelled:
                handle.callback()
        self.now = target

    @property
    def armed(self) -> int:
        return sum(not h.cancelled for _, _, h in self._timers)


class Tracker:
    """Counts actions running at once, overall and per rule, and remembers the maxima."""

    def __init__(self) -> None:
        self.running = 0
        self.max_running = 0
        self.by_rule: dict[str, int] = {}
        self.max_by_rule: dict[str, int] = {}
        self.order: list[str] = []  # rule of each run, in start order

    def enter(self, rule: str) -> None:
        self.order.append(rule)
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        self.by_rule[rule] = self.by_rule.get(rule, 0) + 1
        self.max_by_rule[rule] = max(self.max_by_rule.get(rule, 0), self.by_rule[rule])

    def leave(self, rule: str) -> None:
        self.running -= 1
        self.by_rule[rule] -= 1


class FakeAction:
    """An Action that records its jobs; it can block on a gate, fail or raise on cue.

    Args:
        blocking: each run waits until released (release_one / release_all).
        fail: return ``ok=False``.
        boom: raise RuntimeError instead of returning.
        hook: called with the job when the run begins (e.g. to submit a "self-made" event).
    """

    kind = "run"

    def __init__(
        self,
        tracker: Tracker | None = None,
        *,
        blocking: bool = False,
        fail: bool = False,
        boom: bool = False,
        hook: Callable[[Job], object] | None = None,
    ) -> None:
        self.tracker = tracker or Tracker()
        self.blocking = blocking
        self.fail = fail
        self.boom = boom
        self.hook = hook
        self.calls: list[Job] = []
        self.gates: list[asyncio.Event] = []
        self.cancelled = 0

    async def run(self, job: Job) -> Outcome:
        self.calls.append(job)
        self.tracker.enter(job.rule)
        try:
            if self.hook is not None:
                self.hook(job)
            if self.blocking:
                gate = asyncio.Event()
                self.gates.append(gate)
                await gate.wait()
            else:
                await asyncio.sleep(0)  # let others interleave, as a real action would
            if self.boom:
                raise RuntimeError("boom on cue")
            return Outcome(job.rule, self.kind, job.event_id, job.event.path, ok=not self.fail)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.tracker.leave(job.rule)

    def release_all(self) -> None:
        for gate in self.gates:
            gate.set()

    @property
    def paths(self) -> list[bytes | None]:
        return [job.event.path for job in self.calls]


class M(NamedTuple):
    """A rule match as the matcher makes one (root, relpath, event)."""

    root: bytes
    relpath: bytes
    event: FsEvent


def match(path: bytes, mask: int = Mask.CLOSE_WRITE, root: bytes = b"/w") -> M:
    """A match for absolute ``path`` under ``root``."""
    return M(root, path[len(root) + 1 :], FsEvent(path, int(mask), root=root))


def make(clock: FakeClock, **settings: Any) -> Dispatcher:
    """A dispatcher on ``clock`` with test ids ("t-1", "t-2", ...)."""
    return Dispatcher(DispatchSettings(**settings), scheduler=clock, ids=EventIds("t"))


def rule(action: FakeAction | list[FakeAction], name: str = "r", **kw: Any) -> RuleRuntime:
    """A RuleRuntime with the given fake action(s)."""
    actions = action if isinstance(action, list) else [action]
    return RuleRuntime(name=name, actions=tuple(actions), **kw)


async def until(cond: Callable[[], bool], what: str = "condition", timeout: float = 5.0) -> None:
    """Let the loop run until ``cond()`` holds; fail after ``timeout`` seconds (real)."""
    try:
        async with asyncio.timeout(timeout):
            while not cond():
                await asyncio.sleep(0)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def settle(rounds: int = 20) -> None:
    """Give the loop a few turns (for asserting that something did NOT happen)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


@asynccontextmanager
async def running(dispatcher: Dispatcher) -> AsyncIterator[Dispatcher]:
    """Run ``dispatcher`` in a TaskGroup for the block; cancel what is left at the end."""
    ready = asyncio.Event()
    async with asyncio.timeout(20), asyncio.TaskGroup() as tg:
        tg.create_task(dispatcher.run(ready=ready))
        await ready.wait()
        try:
            yield dispatcher
        finally:
            await dispatcher.cancel_all()
