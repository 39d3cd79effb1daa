"""Dispatcher timing and ordering: debounce, batch, per-path order, coalesce, event ids.

Time is a FakeClock: nothing here sleeps; a job starts inside ``clock.advance()`` and the
loop is given turns (``until``) for the fake action to record it.
"""

from __future__ import annotations

from dispatch_fakes import FakeAction, FakeClock, make, match, rule, running, settle, until

from fswatchd.dispatch import EventIds
from fswatchd.events import Mask


async def test_debounce_runs_once_after_quiet_with_latest_event_and_count() -> None:
    """1. Three events for one path 0.4 s apart, debounce 1 s: nothing runs meanwhile.
    2. 1 s after the last one, one job runs, with the last event and merged=3.
    """
    clock = FakeClock()
    action = FakeAction()
    r = rule(action, debounce=1.0)
    d = make(clock)
    async with running(d):
        d.submit(r, match(b"/w/a", Mask.CREATE))
        clock.advance(0.4)
        d.submit(r, match(b"/w/a", Mask.MODIFY))
        clock.advance(0.4)
        d.submit(r, match(b"/w/a", Mask.CLOSE_WRITE))
        clock.advance(0.99)  # 1.79 s after the first event, 0.99 s after the last
        await settle()
        assert action.calls == []
        assert d.stats.queued == 1
        clock.advance(0.02)
        await until(lambda: len(action.calls) == 1, "the debounced job")
    job = action.calls[0]
    assert job.event.mask == Mask.CLOSE_WRITE
    assert job.merged == 3
    assert job.event_id == "t-3"  # the latest event's id
    assert (job.root, job.relpath, job.paths) == (b"/w", b"a", ())


async def test_debounce_is_per_path() -> None:
    """Events on another path do not reset a path's quiet timer."""
    clock = FakeClock()
    action = FakeAction()
    r = rule(action, debounce=1.0)
    d = make(clock)
    async with running(d):
        d.submit(r, match(b"/w/a"))
        for _ in range(5):
            clock.advance(0.3)
            d.submit(r, match(b"/w/b"))
        await until(lambda: action.paths == [b"/w/a"], "a's job while b keeps changing")
        clock.advance(1.0)
        await until(lambda: action.paths == [b"/w/a", b"/w/b"], "b's job")
    assert [j.merged for j in action.calls] == [1, 5]


async def test_batch_runs_once_when_quiet_with_deduplicated_paths_in_order() -> None:
    """1. Events for c, a, c, b within 0.3 s; batch quiet 1 s.
    2. One job 1 s after the last event; paths (c, a, b) in first-seen order; merged 4.
    """
    clock = FakeClock()
    action = FakeAction()
    r = rule(action, batch=(1.0, 10.0))
    d = make(clock)
    async with running(d):
        for name in (b"c", b"a", b"c", b"b"):
            d.submit(r, match(b"/w/" + name))
            clock.advance(0.1)
        clock.advance(0.85)
        await settle()
        assert action.calls == []
        clock.advance(0.1)
        await until(lambda: len(action.calls) == 1, "the batch job")
    job = action.calls[0]
    assert job.paths == (b"/w/c", b"/w/a", b"/w/b")
    assert job.merged == 4
    assert job.event.path == b"/w/b"


async def test_batch_max_wait_closes_a_batch_that_never_goes_quiet() -> None:
    """Events every 0.5 s (quiet 1 s never comes): the batch runs max_wait after its first
    event with the paths so far; later events make the next batch."""
    clock = FakeClock()
    action = FakeAction()
    r = rule(action, batch=(1.0, 3.0))
    d = make(clock)
    async with running(d):
        for i in range(10):  # t = 0, 0.5, ... 4.5
            d.submit(r, match(b"/w/f%d" % i))
            clock.advance(0.5)
            if i == 6:  # t = 3.5; the first batch closed at t = 3.0, before f6 came
                await until(lambda: len(action.calls) == 1, "the max_wait batch")
        clock.advance(1.0)
        await until(lambda: len(action.calls) == 2, "the second batch")
    assert action.calls[0].paths == tuple(b"/w/f%d" % i for i in range(6))
    assert action.calls[1].paths == tuple(b"/w/f%d" % i for i in range(6, 10))


async def test_batch_that_reaches_queue_limit_paths_closes_and_runs() -> None:
    """A batch holds at most queue_limit paths: the third path closes it and it starts;
    a change after that start belongs to the next batch, even for a path of the first."""
    clock = FakeClock()
    action = FakeAction()
    r = rule(action, batch=(1.0, 30.0), queue_limit=3)
    d = make(clock)
    async with running(d):
        for name in (b"a", b"b", b"c", b"a", b"d"):
            d.submit(r, match(b"/w/" + name))
        await until(lambda: len(action.calls) == 1, "the full batch")
        clock.advance(1.0)
        await until(lambda: len(action.calls) == 2, "the rest")
    assert [j.paths for j in action.calls] == [(b"/w/a", b"/w/b", b"/w/c"), (b"/w/a", b"/w/d")]


async def test_queue_mode_keeps_order_per_path_and_runs_paths_in_parallel() -> None:
    """1. Three events for a, one for b; concurrency 4; actions block.
    2. a's first job and b's job run; a's second waits although slots are free.
    3. Releasing jobs one by one runs a's events in order, each as its own job.
    """
    clock = FakeClock()
    action = FakeAction(blocking=True)
    r = rule(action, concurrency=4)
    d = make(clock)
    async with running(d):
        for mask in (Mask.CREATE, Mask.MODIFY, Mask.CLOSE_WRITE):
            d.submit(r, match(b"/w/a", mask))
        d.submit(r, match(b"/w/b"))
        await until(lambda: len(action.calls) == 2, "a#1 and b")
        await settle()
        assert action.paths == [b"/w/a", b"/w/b"]
        assert d.stats.running == 2
        for expected in (3, 4):
            action.gates[-1 if expected == 4 else 0].set()  # a's latest job
            await until(lambda n=expected: len(action.calls) == n, f"job {expected}")  # type: ignore[misc]
            assert d.stats.running == 2  # b's job and a's next one
    a_jobs = [j for j in action.calls if j.event.path == b"/w/a"]
    assert [j.event.mask for j in a_jobs] == [Mask.CREATE, Mask.MODIFY, Mask.CLOSE_WRITE]
    assert all(j.merged == 1 for j in a_jobs)


async def test_coalesce_merges_events_during_a_run_into_one_pending_job() -> None:
    """1. a's job runs (blocked); five more events for a arrive.
    2. One entry is pending; when the job ends it runs once with the latest event, merged 5.
    """
    clock = FakeClock()
    action = FakeAction(blocking=True)
    r = rule(action, on_busy="coalesce")
    d = make(clock, loop_limit=0)  # the events come while a's job runs: not a loop here
    async with running(d):
        d.submit(r, match(b"/w/a", Mask.CREATE))
        await until(lambda: len(action.calls) == 1, "the first job")
        for _ in range(4):
            d.submit(r, match(b"/w/a", Mask.MODIFY))
        d.submit(r, match(b"/w/a", Mask.CLOSE_WRITE))
        assert d.stats.queued == 1
        assert d.stats.merged == 4
        action.release_all()
        await until(lambda: len(action.calls) == 2, "the coalesced job")
        action.release_all()
    assert action.calls[1].merged == 5
    assert action.calls[1].event.mask == Mask.CLOSE_WRITE
    assert action.calls[1].event_id == "t-6"


async def test_coalesce_with_debounce_waits_for_quiet_then_for_the_running_job() -> None:
    """A coalesced entry still honours debounce: it starts after the running job ends AND
    the path has been quiet for debounce."""
    clock = FakeClock()
    action = FakeAction(blocking=True)
    r = rule(action, on_busy="coalesce", debounce=0.5)
    d = make(clock, loop_limit=0)
    async with running(d):
        d.submit(r, match(b"/w/a"))
        clock.advance(0.5)
        await until(lambda: len(action.calls) == 1, "the first job")
        d.submit(r, match(b"/w/a"))
        action.release_all()
        await settle()
        assert len(action.calls) == 1  # quiet period not over
        clock.advance(0.5)
        await until(lambda: len(action.calls) == 2, "the second job")
        action.release_all()


def test_event_ids_are_prefix_and_counter_and_differ_across_starts() -> None:
    ids = EventIds()
    first, second = ids.next(), ids.next()
    prefix = first.split("-")[0]
    assert len(prefix) == 12 and int(prefix, 16) >= 0
    assert (first, second) == (f"{prefix}-1", f"{prefix}-2")
    assert EventIds().prefix != prefix
