"""Loop protection: a rule whose action changes its own input, or writes {path}.out."""

from __future__ import annotations

import logging

import pytest
from dispatch_fakes import FakeAction, FakeClock, make, match, rule, running, until

from fswatchd.actions.base import Job
from fswatchd.dispatch.loops import LoopGuard
from fswatchd.events import show_path


def loop_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "loop protection" in r.getMessage()
    ]


async def test_action_rewriting_its_own_path_is_stopped_once_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """1. The action "writes" the path it was given: an event for it arrives mid-run.
    2. The original job plus loop_limit (3) self-caused re-runs happen, then the path is
       paused: one WARNING naming rule and path, nothing else runs.
    3. After the path was quiet for loop_window, a new change runs again.
    """
    clock = FakeClock()
    d = make(clock, loop_window=1.0, loop_limit=3)
    action = FakeAction()
    r = rule(action, "fmt")
    action.hook = lambda job: d.submit(r, match(job.event.path or b""))
    with caplog.at_level(logging.WARNING, "fswatchd.dispatch"):
        async with running(d):
            d.submit(r, match(b"/w/a\nb"))
            await until(lambda: d.stats.suppressed >= 1, "the breaker")
            await until(lambda: d.stats.running == 0)
            assert len(action.calls) == 4
            assert d.submit(r, match(b"/w/a\nb")) is False  # still paused
            clock.advance(1.5)
            action.hook = None
            assert d.submit(r, match(b"/w/a\nb")) is True
            await until(lambda: len(action.calls) == 5, "the run after a quiet period")
    warnings = loop_warnings(caplog)
    assert len(warnings) == 1
    assert "fmt" in warnings[0] and "/w/a\\x0ab" in warnings[0]


async def test_chain_of_derived_files_is_cut_at_max_chain(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The action writes {path}.out, which matches again: a, a.out, ... runs max_chain + 1
    jobs (depth 0..8), the next derived file is dropped with one WARNING."""
    clock = FakeClock()
    d = make(clock, max_chain=8)
    action = FakeAction()
    r = rule(action, "conv")
    action.hook = lambda job: d.submit(r, match((job.event.path or b"") + b".out"))
    with caplog.at_level(logging.WARNING, "fswatchd.dispatch"):
        async with running(d):
            d.submit(r, match(b"/w/a"))
            await until(lambda: d.stats.suppressed == 1 and d.stats.running == 0, "the cut")
    assert len(action.calls) == 9
    assert action.calls[-1].event.path == b"/w/a" + b".out" * 8
    warnings = loop_warnings(caplog)
    assert len(warnings) == 1 and "max_chain 8" in warnings[0]


async def test_unrelated_files_arriving_during_jobs_are_not_a_chain() -> None:
    """Files copied one by one into a directory, each while the previous one's job runs,
    all run: their names do not derive from one another."""
    clock = FakeClock()
    d = make(clock, max_chain=2)
    action = FakeAction()
    r = rule(action, concurrency=1)

    def next_file(job: Job) -> None:
        n = int((job.event.path or b"")[len(b"/w/photo") :].split(b".")[0])
        if n < 20:
            d.submit(r, match(b"/w/photo%d.jpg" % (n + 1)))

    action.hook = next_file
    async with running(d):
        d.submit(r, match(b"/w/photo1.jpg"))
        await until(lambda: len(action.calls) == 20 and d.stats.running == 0, "20 files")
    assert d.stats.suppressed == 0


def test_guard_forgets_paths_after_the_window() -> None:
    guard = LoopGuard(window=1.0, limit=3, max_chain=8)
    for i in range(100):
        path = b"/w/f%d" % i
        assert guard.on_start("r", path, 0, False, now=0.0)
        guard.on_end("r", path, now=0.5)
    assert len(guard) == 100
    assert guard.on_event("r", b"/w/f1", now=1.0).self_caused
    guard.sweep(now=1.6)
    assert len(guard) == 0
    assert guard.on_event("r", b"/w/f1", now=1.7) == (True, False, 0)


@pytest.mark.parametrize(
    ("parent", "child", "derived"),
    [
        (b"/w/a.txt", b"/w/a.txt.out", True),
        (b"/w/photo.jpg", b"/w/photo.thumb.jpg", True),
        (b"/w/data", b"/w/data_copy", True),
        (b"/w/photo1.jpg", b"/w/photo10.jpg", False),
        (b"/w/a.txt", b"/w/sub/a.txt.out", False),
        (b"/w/\xff.bin", b"/w/\xff.bin.gz", True),
    ],
    ids=["suffix", "stem", "underscore", "digit-continues-name", "other-dir", "non-utf8"],
)
def test_derived_file_recognition(parent: bytes, child: bytes, derived: bool) -> None:
    guard = LoopGuard(window=1.0, limit=3, max_chain=8)
    assert guard.on_start("r", parent, 0, False, now=0.0)
    assert guard.on_event("r", child, now=0.1).depth == (1 if derived else 0)


def test_show_path_keeps_one_line() -> None:
    assert show_path(b"/w/a\nb\xff") == "/w/a\\x0ab\\xff"
