"""Dispatcher as failure boundary and its life cycle: failures, drain, cancel, reload, stats."""

from __future__ import annotations

import asyncio
import logging

import pytest
from dispatch_fakes import FakeAction, FakeClock, make, match, rule, running, settle, until


@pytest.mark.parametrize("stop", [True, False], ids=["stop_on_failure", "keep_going"])
async def test_stop_on_failure(stop: bool, caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    first, second = FakeAction(fail=True), FakeAction()
    r = rule([first, second], stop_on_failure=stop)
    d = make(clock)
    with caplog.at_level(logging.INFO, "fswatchd.dispatch"):
        async with running(d):
            d.submit(r, match(b"/w/a"))
            await until(lambda: d.stats.done == 1)
    assert len(first.calls) == 1
    assert len(second.calls) == (0 if stop else 1)
    assert d.stats.failed == 1
    skipped = [r for r in caplog.records if "stop_on_failure" in r.getMessage()]
    assert len(skipped) == (1 if stop else 0)


async def test_raising_action_is_contained_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    """1. Rule bad's first action raises; its second still runs (stop_on_failure off).
    2. Rule good, and later jobs of bad, keep running; the dispatcher does not stop.
    """
    clock = FakeClock()
    boom, after, good = FakeAction(boom=True), FakeAction(), FakeAction()
    bad_rule = rule([boom, after], "bad", stop_on_failure=False)
    good_rule = rule(good, "good")
    d = make(clock)
    with caplog.at_level(logging.WARNING):
        async with running(d):
            d.submit(bad_rule, match(b"/w/a"))
            d.submit(good_rule, match(b"/w/a"))
            await until(lambda: d.stats.done == 2)
            d.submit(bad_rule, match(b"/w/b"))
            await until(lambda: d.stats.done == 3)
    assert (len(boom.calls), len(after.calls), len(good.calls)) == (2, 2, 1)
    assert (d.stats.crashed, d.stats.failed) == (2, 2)
    raised = [r for r in caplog.records if r.name == "fswatchd.dispatch"]
    assert len(raised) == 2 and raised[0].exc_info is not None
    failed_outcomes = [r for r in caplog.records if r.name == "fswatchd.actions"]
    assert len(failed_outcomes) == 2


async def test_drain_waits_for_a_slow_job_and_discards_pending_work() -> None:
    """1. One job runs (blocked), two more are pending (one still debouncing).
    2. drain() refuses new events, discards the 2 pending, and returns once the running
       job finishes; run() then returns.
    """
    clock = FakeClock()
    action = FakeAction(blocking=True)
    r = rule(action, concurrency=1)
    slow = rule(action, "slow", debounce=5.0)
    d = make(clock)
    ready = asyncio.Event()
    async with asyncio.timeout(5), asyncio.TaskGroup() as tg:
        runner = tg.create_task(d.run(ready=ready))
        await ready.wait()
        d.submit(r, match(b"/w/a"))
        d.submit(r, match(b"/w/b"))
        d.submit(slow, match(b"/w/c"))
        await until(lambda: len(action.calls) == 1)
        drain = tg.create_task(d.drain(timeout=30.0))
        await settle()
        assert d.submit(r, match(b"/w/d")) is False
        assert not drain.done()
        action.release_all()
        assert await drain == 2
        await runner
    assert d.stats == d.stats.__class__(done=1, discarded=2, refused=1)
    assert len(action.calls) == 1
    assert clock.armed == 0  # the debounce timer was cancelled


async def test_drain_deadline_then_cancel_all_stops_the_job() -> None:
    """1. A job that never finishes; drain(0.05 s) returns with it still running.
    2. cancel_all() cancels it; the action sees CancelledError; run() returns.
    """
    clock = FakeClock()
    action = FakeAction(blocking=True)
    d = make(clock)
    ready = asyncio.Event()
    async with asyncio.timeout(5), asyncio.TaskGroup() as tg:
        runner = tg.create_task(d.run(ready=ready))
        await ready.wait()
        d.submit(rule(action), match(b"/w/a"))
        await until(lambda: len(action.calls) == 1)
        assert await d.drain(timeout=0.05) == 0
        assert d.stats.running == 1
        await d.cancel_all()
        await runner
    assert action.cancelled == 1
    assert (d.stats.running, d.stats.cancelled, d.stats.done) == (0, 1, 0)


async def test_cancel_all_before_jobs_take_their_first_step() -> None:
    """Jobs cancelled right after they were started still give their slots back."""
    clock = FakeClock()
    action = FakeAction()
    d = make(clock, max_actions=8)
    async with running(d):
        for i in range(5):
            d.submit(rule(action, concurrency=8), match(b"/w/%d" % i))
        assert d.stats.running == 5
        await d.cancel_all()
        assert d.stats.running == 0
    assert d.stats.cancelled == 5
    assert action.calls == []


async def test_work_submitted_before_run_starts_when_run_begins() -> None:
    clock = FakeClock()
    action = FakeAction()
    d = make(clock)
    d.submit(rule(action), match(b"/w/a"))
    assert d.stats.queued == 1
    async with running(d):
        await until(lambda: d.stats.done == 1)


async def test_run_twice_is_an_error() -> None:
    d = make(FakeClock())
    async with running(d):
        with pytest.raises(RuntimeError, match="already called"):
            await d.run()


async def test_reload_queued_job_keeps_its_rule_new_events_use_the_new_one() -> None:
    """1. a's job runs (blocked), b queued under rule v1.
    2. Reload to v2 (other action, concurrency 2): b still runs v1's action; c runs v2's.
    """
    clock = FakeClock()
    old, new = FakeAction(blocking=True), FakeAction()
    v1 = rule(old, "r", concurrency=1)
    v2 = rule(new, "r", concurrency=2)
    d = make(clock)
    async with running(d):
        d.submit(v1, match(b"/w/a"))
        d.submit(v1, match(b"/w/b"))
        await until(lambda: len(old.calls) == 1)
        d.set_rules([v2])
        await until(lambda: len(old.calls) == 2, "b under the old rule, in the new slot")
        d.submit(v2, match(b"/w/c"))
        old.release_all()
        await until(lambda: len(new.calls) == 1)
        old.release_all()
    assert [j.event.path for j in old.calls] == [b"/w/a", b"/w/b"]
    assert [j.event.path for j in new.calls] == [b"/w/c"]
