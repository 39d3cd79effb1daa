"""The dispatcher: matched events in, action jobs out, with debounce, batches and limits.

``submit()`` is synchronous and O(1): it folds the event into the rule's pending work (see
``fswatchd.workqueue``) and returns; the watcher never waits for actions. Jobs run as tasks
of a TaskGroup that :meth:`Dispatcher.run` owns, one task per running job (never per
event). Time comes from an injected :class:`~fswatchd.dispatch.model.Scheduler` (the event
loop in the daemon, a fake clock in tests); one timer is armed at a time, for the earliest
pending ``due``.

Life cycle: NEW -> RUNNING (``run()``) -> DRAINING (``drain()``/``cancel_all()``: intake
stopped, pending work discarded) -> CLOSED (``run()`` returned).
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections import deque
from collections.abc import Iterable

from ..workqueue import BATCH_KEY, MemoryWorkQueue, PendingEntry, WorkQueue
from .backpressure import RuleState, end_episode, note_pending, room_for_new
from .jobs import JobResult, job_for, run_job
from .loops import FRESH, LoopGuard, Verdict
from .model import DispatchRule, DispatchSettings, DispatchStats, EventIds, MatchLike, Scheduler
from .timers import DueTimer

__all__ = ["Dispatcher"]

_log = logging.getLogger("fswatchd.dispatch")

Entry = PendingEntry[DispatchRule]


class _Phase(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    DRAINING = "draining"
    CLOSED = "closed"


class Dispatcher:
    """Runs rules' actions for matched events; the failure boundary for actions.

    Args:
        settings: daemon-wide knobs (``max_actions``, loop protection, hard cap factor).
        scheduler: the clock and timers; the running event loop when None (so construct
            inside the loop; RuntimeError otherwise).
        queue: the pending-work store; in memory when None.
        ids: the event id source; a new random prefix when None.

    See docs/dispatch.md for the operator-facing behaviour.
    """

    def __init__(
        self,
        settings: DispatchSettings | None = None,
        *,
        scheduler: Scheduler | None = None,
        queue: WorkQueue[DispatchRule] | None = None,
        ids: EventIds | None = None,
    ) -> None:
        self.settings = settings or DispatchSettings()
        self._scheduler: Scheduler = scheduler or asyncio.get_running_loop()
        self._clock = self._scheduler.time
        self._queue: WorkQueue[DispatchRule] = queue or MemoryWorkQueue()
        self._ids = ids or EventIds()
        s = self.settings
        self._guard = LoopGuard(s.loop_window, s.loop_limit, s.max_chain)
        self._phase = _Phase.NEW
        self._rules: dict[str, RuleState] = {}
        self._ready_rules: deque[RuleState] = deque()
        self._timer: DueTimer[DispatchRule] = DueTimer(self._scheduler, self._on_due, self._pump)
        self._tg: asyncio.TaskGroup | None = None
        self._tasks: set[asyncio.Task[JobResult]] = set()
        self._all_done = asyncio.Event()
        self._running = 0
        self._counts = dict.fromkeys(
            ("done", "failed", "crashed", "merged", "dropped", "suppressed", "refused",
             "discarded", "cancelled"),
            0,
        )  # fmt: skip

    def submit(self, rule: DispatchRule, match: MatchLike) -> bool:
        """Take one matched event; never blocks, never awaits, O(1).

        Args:
            rule: the rule (limits and actions) the event matched; the entry keeps this
                object even if a reload replaces the rule before the job starts.
            match: ``root``, ``relpath`` (bytes) and ``event`` (:class:`FsEvent`).
        Returns:
            True if the event is now part of pending work (new or merged); False if it was
            refused (draining), dropped (hard cap) or withheld by loop protection; each is
            counted in :attr:`stats` and logged as docs/dispatch.md describes.
        """
        if self._phase is _Phase.DRAINING or self._phase is _Phase.CLOSED:
            self._counts["refused"] += 1
            return False
        now = self._clock()
        state = self._state_for(rule)
        if rule.batch is not None:
            return self._submit_batch(state, rule, match, now)
        key = match.event.path or b""
        verdict = self._guard.on_event(rule.name, key, now)
        if not verdict.accept:
            self._counts["suppressed"] += 1
            return False
        pending = self._queue.pending(rule.name)
        over = note_pending(state, pending)
        tail = self._queue.tail(rule.name, key)
        if tail is not None:
            if now < tail.due:  # still in its quiet period: debounce restarts
                due = now + rule.debounce
            elif over or rule.on_busy == "coalesce":
                due = tail.due
            else:
                tail = None
            if tail is not None:
                self._merge(tail, rule, match, due, verdict)
                return True
        if not self._room_for_new(state, pending):
            return False
        entry = self._entry(rule, key, match, now, now + rule.debounce)
        entry.depth, entry.self_caused = verdict.depth, verdict.self_caused
        self._enqueue(state, entry, now)
        return True

    def _submit_batch(
        self, state: RuleState, rule: DispatchRule, match: MatchLike, now: float
    ) -> bool:
        """submit() for a batch rule: one lane, distinct paths collected in the entry."""
        assert rule.batch is not None
        quiet, max_wait = rule.batch
        path = match.event.path or b""
        tail = self._queue.tail(rule.name, BATCH_KEY)
        pending = self._queue.pending(rule.name)
        note_pending(state, pending)
        if tail is not None and tail.paths is not None:
            is_open = now < tail.due
            known = path in tail.paths
            size = len(tail.paths) + (not known)
            if known or ((is_open or rule.on_busy == "coalesce") and size <= rule.queue_limit):
                due = min(now + quiet, tail.deadline) if is_open else tail.due
                if size >= rule.queue_limit:
                    due = min(due, now)  # a full batch closes: it runs next
                self._merge(tail, rule, match, due)
                if due <= now:
                    self._lane_may_start(state, BATCH_KEY, now)
                    self._pump()
                return True
        if not self._room_for_new(state, pending):
            return False
        entry = self._entry(rule, BATCH_KEY, match, now, min(now + quiet, now + max_wait))
        entry.deadline = now + max_wait
        entry.paths = {path: None}
        self._enqueue(state, entry, now)
        return True

    def _entry(
        self, rule: DispatchRule, key: bytes, match: MatchLike, now: float, due: float
    ) -> Entry:
        """A new pending entry for one event."""
        event_id = self._ids.next()
        return PendingEntry(
            rule, rule.name, key, match.event,
            event_id=event_id, root=match.root, relpath=match.relpath, now=now, due=due,
        )  # fmt: skip

    def _merge(
        self, entry: Entry, rule: DispatchRule, match: MatchLike, due: float, v: Verdict = FRESH
    ) -> None:
        """Fold one event into a pending entry (latest event wins; merged += 1)."""
        self._counts["merged"] += 1
        self._queue.merge(
            entry, rule, match.event, event_id=self._ids.next(), root=match.root,
            relpath=match.relpath, due=due, depth=v.depth, self_caused=v.self_caused,
        )  # fmt: skip

    def _enqueue(self, state: RuleState, entry: Entry, now: float) -> None:
        """Push a new entry; make its lane ready now or arm a timer for its ``due``."""
        self._queue.push(entry)
        if entry.due <= now:
            self._lane_may_start(state, entry.key, now)
            self._pump()
        else:
            self._timer.add(entry)

    def _room_for_new(self, state: RuleState, pending: int) -> bool:
        """False, counted, when the rule is at its hard cap (see ``backpressure``)."""
        if room_for_new(state, pending, self.settings.hard_cap_factor):
            return True
        self._counts["dropped"] += 1
        return False

    def _state_for(self, rule: DispatchRule) -> RuleState:
        """The state of ``rule.name``, created if new; its limits follow ``rule``."""
        state = self._rules.get(rule.name)
        if state is None:
            state = self._rules[rule.name] = RuleState(rule)
        else:
            state.rule = rule
        return state

    def set_rules(self, rules: Iterable[DispatchRule]) -> None:
        """Apply a reload: new limits take effect now; queued jobs keep their rule object.

        Args:
            rules: every rule of the new rule set. State of rules no longer present is
                forgotten once their queued and running jobs are gone.
        """
        names = set()
        for rule in rules:
            self._list(self._state_for(rule))
            names.add(rule.name)
        for name in [n for n, s in self._rules.items() if n not in names]:
            state = self._rules[name]
            if not state.running and not self._queue.pending(name) and not state.listed:
                del self._rules[name]
        self._pump()  # a raised concurrency may let waiting jobs start

    def _on_due(self, entry: Entry) -> None:
        """DueTimer callback: ``entry``'s quiet period is over; its lane may start."""
        self._lane_may_start(self._rules[entry.rule_name], entry.key, entry.due)

    def _lane_may_start(self, state: RuleState, key: bytes, now: float) -> None:
        """Put the lane on the ready FIFO if it is idle and its head is due at ``now``."""
        if key in state.running_keys:
            return  # the job's end looks again
        head = self._queue.head(state.name, key)
        if head is not None and head.due <= now and self._queue.mark_ready(state.name, key):
            self._list(state)

    def _list(self, state: RuleState) -> None:
        """Put the rule on the ready-rules FIFO if it has a ready lane and is not on it."""
        if not state.listed and self._queue.has_ready(state.name):
            state.listed = True
            self._ready_rules.append(state)

    def _pump(self) -> None:
        """Start ready jobs while the global and per-rule limits allow, rules round-robin."""
        if self._tg is None or self._phase is not _Phase.RUNNING:
            return
        ready = self._ready_rules
        while ready and self._running < self.settings.max_actions:
            state = ready.popleft()
            state.listed = False
            if state.running >= state.rule.concurrency:
                continue  # listed again when one of its jobs ends
            entry = self._queue.pop_ready(state.name)
            if entry is not None:
                self._start(state, entry)
            self._list(state)

    def _start(self, state: RuleState, entry: Entry) -> None:
        """Start the job of a popped entry, unless loop protection withholds it."""
        now = self._clock()
        if state.over_limit:
            end_episode(state, self._queue.pending(state.name))
        key = entry.key
        is_batch = entry.paths is not None
        if not is_batch and not self._guard.on_start(
            state.name, key, entry.depth, entry.self_caused, now
        ):
            self._counts["suppressed"] += 1
            self._lane_may_start(state, key, now)
            return
        assert self._tg is not None
        job = job_for(entry)
        state.running += 1
        state.running_keys.add(key)
        self._running += 1
        task = self._tg.create_task(
            run_job(entry.rule, job, self._clock), name=f"fswatchd.dispatch:{job.event_id}"
        )
        self._tasks.add(task)
        # A done callback, not a finally: a task cancelled before its first step never
        # enters the coroutine, and its slot must still be given back.
        task.add_done_callback(lambda t: self._finish(state, key, is_batch, t))

    def _finish(
        self, state: RuleState, key: bytes, is_batch: bool, task: asyncio.Task[JobResult]
    ) -> None:
        """Done callback of a job task: count it, free its slots, start what may start."""
        self._tasks.discard(task)
        state.running -= 1
        state.running_keys.discard(key)
        self._running -= 1
        if task.cancelled():
            self._counts["cancelled"] += 1
        elif task.exception() is None:
            result = task.result()
            self._counts["done"] += 1
            self._counts["failed"] += result.failed
            self._counts["crashed"] += result.crashed
        now = self._clock()
        if not is_batch:
            self._guard.on_end(state.name, key, now)
        if self._phase is _Phase.RUNNING:
            self._lane_may_start(state, key, now)
            self._list(state)
            self._pump()
        elif self._running == 0 and self._phase is _Phase.DRAINING:
            self._all_done.set()

    async def run(self, *, ready: asyncio.Event | None = None) -> None:
        """Own the job tasks until drained; start it in the supervisor's TaskGroup.

        Args:
            ready: set once jobs can start (work submitted earlier waits until then).

        Returns after :meth:`drain` or :meth:`cancel_all` once no job runs; if the task is
        cancelled, running jobs are cancelled with it (TaskGroup semantics).

        Raises:
            RuntimeError: run() was already called.
        """
        if self._phase is not _Phase.NEW:
            if self._phase is _Phase.DRAINING:
                if ready is not None:
                    ready.set()
                return  # drained before it ever ran: nothing to own
            raise RuntimeError("Dispatcher.run() was already called; make a new Dispatcher")
        self._phase = _Phase.RUNNING
        _log.info("dispatcher: running (max_actions %d)", self.settings.max_actions)
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                for state in self._rules.values():
                    self._list(state)
                self._pump()
                if ready is not None:
                    ready.set()
                await self._all_done.wait()
        finally:
            self._tg = None
            self._phase = _Phase.CLOSED
            self._timer.clear()

    async def drain(self, timeout: float) -> int:
        """Stop intake and wait up to ``timeout`` seconds for running jobs to finish.

        Pending jobs (queued, debouncing, batching) are discarded, never started; later
        submit() calls are refused and counted. Idempotent.

        Returns:
            the number of pending jobs discarded by this call (0 on a repeated call); see
            ``stats.running`` for jobs still running when the deadline passed.
        """
        discarded = self._stop_intake()
        if self._running:
            try:
                async with asyncio.timeout(timeout):
                    await self._all_done.wait()
            except TimeoutError:
                _log.info("dispatcher: %d jobs still running after %g s", self._running, timeout)
        return discarded

    async def cancel_all(self) -> None:
        """Stop intake (as :meth:`drain`) and cancel every running job; wait for them.

        Each action cleans up on cancellation (a command's process group gets SIGTERM, then
        SIGKILL), so this waits as long as that takes; put a deadline around it.
        """
        self._stop_intake()
        tasks = list(self._tasks)
        if tasks:
            _log.info("dispatcher: cancelling %d running jobs", len(tasks))
        for task in tasks:
            task.cancel()
        if self._running:
            await self._all_done.wait()

    def _stop_intake(self) -> int:
        """NEW/RUNNING -> DRAINING: refuse submits, discard pending work; returns discarded."""
        if self._phase is not _Phase.NEW and self._phase is not _Phase.RUNNING:
            return 0
        self._phase = _Phase.DRAINING
        self._timer.clear()
        self._ready_rules.clear()
        for state in self._rules.values():
            state.listed = False
        discarded = self._queue.clear()
        self._counts["discarded"] += discarded
        _log.info(
            "dispatcher: intake stopped; %d pending jobs discarded, %d running",
            discarded,
            self._running,
        )
        if not self._running:
            self._all_done.set()
        return discarded

    @property
    def stats(self) -> DispatchStats:
        """A snapshot of the counters (:class:`DispatchStats`)."""
        return DispatchStats(running=self._running, queued=len(self._queue), **self._counts)
