"""MovePairer on fabricated raw streams (H07 cannot be forced through the kernel)."""

from __future__ import annotations

from fswatchd.events import Mask, RawEvent
from fswatchd.watch.moves import MovePairer

TIMEOUT = 0.03
FROM, TO = int(Mask.MOVED_FROM), int(Mask.MOVED_TO)


def frm(cookie: int, name: bytes = b"a", wd: int = 1) -> RawEvent:
    return RawEvent(wd, FROM, cookie, name)


def to(cookie: int, name: bytes = b"b", wd: int = 1) -> RawEvent:
    return RawEvent(wd, TO, cookie, name)


def other(name: bytes = b"x", wd: int = 1) -> RawEvent:
    return RawEvent(wd, int(Mask.CREATE), 0, name)


def test_adjacent_pair_passes_unchanged() -> None:
    p = MovePairer(TIMEOUT)
    batch = [other(b"1"), frm(7), to(7), other(b"2")]
    assert p.push(batch, 0.0) == batch
    assert p.held == 0 and p.deadline is None


def test_no_moves_is_the_same_list() -> None:
    """Fast path: a batch without MOVED_FROM is returned as is (no copy)."""
    batch = [other(), to(3)]
    assert MovePairer(TIMEOUT).push(batch, 0.0) is batch


def test_pair_split_across_batches() -> None:
    p = MovePairer(TIMEOUT)
    assert p.push([other(b"1"), frm(7)], 0.0) == [other(b"1")]
    assert p.held == 1
    assert p.push([to(7), other(b"2")], 0.001) == [frm(7), to(7), other(b"2")]
    assert p.held == 0


def test_unrelated_event_between_halves() -> None:
    """The TO is moved up next to its FROM; the event between follows the pair."""
    p = MovePairer(TIMEOUT)
    assert p.push([frm(7), other(), to(7)], 0.0) == [frm(7), to(7), other()]


def test_two_interleaved_pairs() -> None:
    p = MovePairer(TIMEOUT)
    got = p.push([frm(1, b"a"), frm(2, b"c"), to(2, b"d"), to(1, b"b")], 0.0)
    assert got == [frm(1, b"a"), to(1, b"b"), frm(2, b"c"), to(2, b"d")]


def test_from_without_to_expires_and_holds_later_events() -> None:
    """An unpaired FROM holds everything after it until its deadline, then is released
    alone (a move out), followed by the held events in order."""
    p = MovePairer(TIMEOUT)
    assert p.push([frm(7), other(b"1")], 10.0) == []
    assert p.deadline == 10.0 + TIMEOUT
    assert p.push([other(b"2")], 10.01) == []
    assert p.push([], 10.0 + TIMEOUT) == [frm(7), other(b"1"), other(b"2")]
    assert p.held == 0 and p.deadline is None


def test_to_without_from_passes() -> None:
    assert MovePairer(TIMEOUT).push([to(9)], 0.0) == [to(9)]


def test_to_after_the_timeout_is_a_move_in() -> None:
    p = MovePairer(TIMEOUT)
    assert p.push([frm(7)], 0.0) == []
    assert p.push([], 1.0) == [frm(7)]
    assert p.push([to(7)], 1.1) == [to(7)]  # unpaired: not preceded by its FROM


def test_same_wd_twice() -> None:
    """Two renames out of the same directory (same wd), one pairs late."""
    p = MovePairer(TIMEOUT)
    assert p.push([frm(1, b"a"), frm(2, b"b")], 0.0) == []
    assert p.push([to(2, b"B", wd=5)], 0.001) == []  # still waiting for cookie 1
    assert p.push([to(1, b"A", wd=5)], 0.002) == [
        frm(1, b"a"),
        to(1, b"A", wd=5),
        frm(2, b"b"),
        to(2, b"B", wd=5),
    ]


def test_second_from_waits_for_its_own_deadline() -> None:
    p = MovePairer(TIMEOUT)
    assert p.push([frm(1)], 0.0) == []
    assert p.push([frm(2)], 0.02) == []
    assert p.push([], 0.031) == [frm(1)]
    assert p.deadline == 0.02 + TIMEOUT
    assert p.push([], 0.06) == [frm(2)]


def test_rename_exchange_two_pairs() -> None:
    """renameat2(RENAME_EXCHANGE): two pairs (p->q, q->p) with MOVE_SELFs between."""
    move_self = RawEvent(3, int(Mask.MOVE_SELF), 0, b"")
    batch = [frm(1, b"p"), to(1, b"q"), move_self, frm(2, b"q"), to(2, b"p")]
    assert MovePairer(TIMEOUT).push(batch, 0.0) == batch


def test_halves_before_an_overflow_are_dropped() -> None:
    overflow = RawEvent(-1, int(Mask.Q_OVERFLOW), 0, b"")
    p = MovePairer(TIMEOUT)
    assert p.push([other(b"1"), frm(7), overflow], 0.0) == [other(b"1"), overflow]
    assert p.held == 0


def test_discard_keeps_pairs_and_drops_unpaired() -> None:
    p = MovePairer(TIMEOUT)
    assert p.push([frm(1), other(), frm(2), to(2)], 0.0) == []
    assert p.discard() == [other(), frm(2), to(2)]
    assert p.held == 0
