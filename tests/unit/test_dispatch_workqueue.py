"""MemoryWorkQueue: lanes in FIFO order, ready lanes in FIFO order, units, clear."""

from __future__ import annotations

from fswatchd.events import FsEvent
from fswatchd.workqueue import BATCH_KEY, MemoryWorkQueue, PendingEntry


def entry(key: bytes, rule: str = "r", *, batch: bool = False) -> PendingEntry[str]:
    event = FsEvent(key or b"/w/x", 0x8)
    return PendingEntry(
        rule, rule, key, event, event_id="e", root=b"/w", relpath=b"x", now=0.0, due=0.0,
        batch=batch,
    )  # fmt: skip


def test_lanes_keep_fifo_order_and_ready_lanes_pop_in_marking_order() -> None:
    q: MemoryWorkQueue[str] = MemoryWorkQueue()
    a1, a2, b1 = entry(b"/a"), entry(b"/a"), entry(b"/b")
    for e in (a1, a2, b1):
        q.push(e)
    assert (q.head("r", b"/a"), q.tail("r", b"/a")) == (a1, a2)
    assert len(q) == q.pending("r") == 3
    assert q.pop_ready("r") is None
    assert q.mark_ready("r", b"/b") and q.mark_ready("r", b"/a")
    assert not q.mark_ready("r", b"/a")  # idempotent
    assert not q.mark_ready("r", b"/nothing")
    assert [q.pop_ready("r"), q.pop_ready("r"), q.pop_ready("r")] == [b1, a1, None]
    assert not a1.queued and a2.queued
    assert (q.head("r", b"/a"), q.tail("r", b"/a")) == (a2, a2)
    assert not q.has_ready("r")
    q.mark_ready("r", b"/a")
    assert q.pop_ready("r") is a2
    assert len(q) == q.pending("r") == 0
    assert q.head("r", b"/a") is None


def test_batch_units_count_distinct_paths_and_clear_drops_everything() -> None:
    q: MemoryWorkQueue[str] = MemoryWorkQueue()
    batch = entry(BATCH_KEY, batch=True)
    q.push(batch)
    q.push(entry(b"/a", "other"))
    for path in (b"/w/y", b"/w/x", b"/w/y"):
        q.merge(
            batch, "r", FsEvent(path, 0x2), event_id="e2", root=b"/w", relpath=path[3:], due=1.0
        )
    assert batch.paths is not None and list(batch.paths) == [b"/w/x", b"/w/y"]
    assert (batch.merged, batch.due, batch.event.path) == (4, 1.0, b"/w/y")
    assert (q.pending("r"), q.pending("other"), len(q)) == (2, 1, 2)
    assert q.clear() == 2
    assert (len(q), q.pending("r"), batch.queued) == (0, 0, False)
