"""Dispatcher limits: per-rule concurrency, global max_actions, queue_limit, hard cap, floods."""

from __future__ import annotations

import logging
import time

import pytest
from dispatch_fakes import FakeAction, FakeClock, Tracker, make, match, rule, running, until


async def test_concurrency_per_rule_and_max_actions_across_rules() -> None:
    """1. Rules x and y, concurrency 2 each, max_actions 3; ten paths each, actions block.
    2. Exactly 3 run, neither rule above 2; releasing jobs keeps the bounds until all 20 ran.
    """
    clock = FakeClock()
    tracker = Tracker()
    ax, ay = FakeAction(tracker, blocking=True), FakeAction(tracker, blocking=True)
    rx, ry = rule(ax, "x", concurrency=2), rule(ay, "y", concurrency=2)
    d = make(clock, max_actions=3)
    async with running(d):
        for i in range(10):
            d.submit(rx, match(b"/w/x%d" % i))
            d.submit(ry, match(b"/w/y%d" % i))
        await until(lambda: tracker.running == 3, "the first three jobs")
        for released in range(1, 21):
            next(g for g in ax.gates + ay.gates if not g.is_set()).set()
            # quiescent: the released job is done and every started job has begun its run
            await until(
                lambda n=released: (
                    d.stats.done == n  # type: ignore[misc]
                    and len(ax.calls) + len(ay.calls) == n + d.stats.running
                )
            )
            assert d.stats.running == tracker.running <= 3
            assert max(tracker.by_rule.values()) <= 2
            if len(ax.calls) < 10 and len(ay.calls) < 10:  # both rules have work waiting
                assert d.stats.running == 3
    assert tracker.max_running == 3
    assert tracker.max_by_rule == {"x": 2, "y": 2}
    # rules take turns for free global slots: neither waited for the other to finish
    assert set(tracker.order[:3]) == {"x", "y"}


async def test_queue_limit_merges_events_for_pending_paths() -> None:
    """1. x's job runs (blocked), queue_limit 2; a and b queue (2 pending = the limit).
    2. More events for a and b merge into their entries; a new path c is still queued.
    3. One WARNING announces the merging.
    """
    clock = FakeClock()
    action = FakeAction(blocking=True)
    r = rule(action, concurrency=1, queue_limit=2)
    d = make(clock)
    async with running(d):
        d.submit(r, match(b"/w/x"))
        await until(lambda: len(action.calls) == 1)
        d.submit(r, match(b"/w/a"))
        d.submit(r, match(b"/w/b"))
        for _ in range(3):
            d.submit(r, match(b"/w/a"))
            d.submit(r, match(b"/w/b"))
        d.submit(r, match(b"/w/c"))
        assert d.stats.queued == 3
        assert d.stats.merged == 6
        action.blocking = False
        action.release_all()
        await until(lambda: len(action.calls) == 4, "a, b and c")
    assert [(j.event.path, j.merged) for j in action.calls[1:]] == [
        (b"/w/a", 4),
        (b"/w/b", 4),
        (b"/w/c", 1),
    ]


async def test_hard_cap_drops_new_paths_with_one_error(caplog: pytest.LogCaptureFixture) -> None:
    """Pending work at queue_limit x hard_cap_factor: events for new paths are dropped,
    counted, and one ERROR names the rule; events for pending paths still merge."""
    clock = FakeClock()
    action = FakeAction(blocking=True)
    r = rule(action, "ingest", concurrency=1, queue_limit=2)
    d = make(clock, hard_cap_factor=3)
    with caplog.at_level(logging.WARNING, "fswatchd.dispatch"):
        async with running(d):
            d.submit(r, match(b"/w/busy"))
            await until(lambda: len(action.calls) == 1)
            accepted = [d.submit(r, match(b"/w/n%d" % i)) for i in range(10)]
            assert accepted == [True] * 6 + [False] * 4
            assert d.submit(r, match(b"/w/n0")) is True  # merges
            assert d.stats.dropped == 4
            assert d.stats.queued == 6
    errors = [rec for rec in caplog.records if rec.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "ingest" in errors[0].getMessage() and "DROPPING" in errors[0].getMessage()
    warnings = [rec for rec in caplog.records if rec.levelno == logging.WARNING]
    assert len([w for w in warnings if "over queue_limit" in w.getMessage()]) == 1


@pytest.mark.parametrize("on_busy", ["queue", "coalesce"])
async def test_flood_of_100k_events_on_10_paths_stays_bounded(on_busy: str) -> None:
    """1. 100,000 submits over 10 paths while the rule's only slot is busy (queue_limit 1).
    2. At most 10 entries are pending; submit stays cheap (well under 10 us each here).
    3. When released, every path runs, its last job carrying its last event, and the jobs'
       merged counts add up to every event submitted.
    """
    clock = FakeClock()
    action = FakeAction(blocking=True)
    r = rule(action, concurrency=1, queue_limit=1, on_busy=on_busy)
    d = make(clock, loop_limit=0)
    async with running(d):
        d.submit(r, match(b"/w/p0"))
        await until(lambda: len(action.calls) == 1)
        masks = [0x2, 0x8, 0x100]
        start = time.perf_counter()
        for i in range(99_999):
            d.submit(r, match(b"/w/p%d" % (i % 10), masks[i % 3]))
        elapsed = time.perf_counter() - start
        assert d.stats.queued <= 10
        assert d.stats.dropped == 0
        action.blocking = False
        action.release_all()
        await until(lambda: d.stats.queued == d.stats.running == 0)
    last = {}
    for i in range(99_999):
        last[b"/w/p%d" % (i % 10)] = masks[i % 3]
    final = {job.event.path: job.event.mask for job in action.calls}
    assert final == last
    assert sum(job.merged for job in action.calls) == 100_000
    assert elapsed < 5.0  # generous: ~1 s on a loaded 2-core box would still pass


async def test_burst_of_2000_events_every_path_acted_on_within_limits() -> None:
    """2,000 events over 400 paths, concurrency 8, max_actions 5, actions that yield:
    every path gets a job with its latest event and the bounds hold throughout."""
    clock = FakeClock()
    tracker = Tracker()
    action = FakeAction(tracker)
    r = rule(action, concurrency=8, queue_limit=50)
    d = make(clock, max_actions=5)
    async with running(d):
        for i in range(2000):
            d.submit(r, match(b"/w/d%d/f" % (i % 400), 0x2 if i < 1600 else 0x8))
        await until(lambda: d.stats.queued == 0 and d.stats.running == 0, "the burst", 10)
    assert tracker.max_running == 5
    seen = {job.event.path: job.event.mask for job in action.calls}
    assert len(seen) == 400
    assert set(seen.values()) == {0x8}
    assert sum(job.merged for job in action.calls) == 2000
    assert d.stats.done == len(action.calls)
