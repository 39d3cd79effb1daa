"""MovePairer: put the two halves of each rename next to each other, by cookie.

inotify(7) queues IN_MOVED_FROM and IN_MOVED_TO as two insertions sharing a cookie; they
need not be adjacent (another event can land in between) nor in the same read(2) (H07),
and a MOVED_FROM whose MOVED_TO never comes means "moved out of the watched tree" (H04),
which can only be decided after a short wait.

The pairer is a reordering buffer over the raw stream. Whatever it returns is in stream
order, except that every MOVED_FROM that found its MOVED_TO is immediately followed by it.
A MOVED_FROM *not* followed by its MOVED_TO is unpaired (it waited ``timeout`` seconds),
and a MOVED_TO not preceded by its MOVED_FROM is a move into the tree. While the oldest
MOVED_FROM is still waiting, it and every later event are held back, so no event whose
path depends on that rename is released early (the simple, correct policy). Pure: time is
passed in (``now``, seconds of any monotonic clock), nothing sleeps.
"""

from __future__ import annotations

from ..events import Mask, RawEvent

__all__ = ["MovePairer"]

_FROM = int(Mask.MOVED_FROM)
_TO = int(Mask.MOVED_TO)
_OVERFLOW = int(Mask.Q_OVERFLOW)


class MovePairer:
    """Pair MOVED_FROM/MOVED_TO by cookie across read batches.

    Args:
        timeout: seconds (float >= 0) an unpaired MOVED_FROM is held before it is
            released as a move out. The caller should drain the fd before calling
            :meth:`push` at :attr:`deadline`, so a late MOVED_TO is not mistaken.
    """

    __slots__ = ("_arrival", "_held", "timeout")

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._held: list[RawEvent] = []
        self._arrival: dict[int, float] = {}

    @property
    def held(self) -> int:
        """Number of raw events currently held back."""
        return len(self._held)

    @property
    def deadline(self) -> float | None:
        """Clock time at which the oldest held MOVED_FROM expires, or None if none is held."""
        if not self._held:
            return None
        return self._arrival.get(self._held[0].cookie, 0.0) + self.timeout

    def push(self, events: list[RawEvent], now: float) -> list[RawEvent]:
        """Add ``events`` (a read batch, in order) and return what can be processed now.

        Args:
            events: raw events in stream order (may be empty: then this is an expiry check).
            now: the current clock time, seconds.
        Returns:
            the releasable events, as described in the module docstring; pending halves
            before an IN_Q_OVERFLOW record are discarded (the rescan repairs the view).
        """
        if not self._held:
            for ev in events:
                if ev.mask & _FROM:
                    break
            else:
                return events  # fast path: nothing to pair, nothing held
            buf = events
        else:
            buf = self._held + events
        for ev in events:
            if ev.mask & _FROM:
                self._arrival.setdefault(ev.cookie, now)
        return self._release(buf, now)

    def discard(self) -> list[RawEvent]:
        """Release everything held, dropping unpaired MOVED_FROMs (used on overflow)."""
        buf, self._held = self._held, []
        self._arrival.clear()
        out = self._pair_all(buf)
        return [ev for ev in out if ev is not None]

    def _release(self, buf: list[RawEvent], now: float) -> list[RawEvent]:
        """Walk ``buf``: pair, expire or stop at the first MOVED_FROM still waiting."""
        tos: dict[int, int] | None = None
        consumed: set[int] = set()
        out: list[RawEvent] = []
        overflow_at = _last_overflow(buf)
        n = len(buf)
        i = 0
        while i < n:
            ev = buf[i]
            i += 1
            if i - 1 in consumed:
                continue
            if not ev.mask & _FROM:
                out.append(ev)
                continue
            nxt = buf[i] if i < n else None
            if nxt is not None and nxt.mask & _TO and nxt.cookie == ev.cookie:
                out.append(ev)
                out.append(nxt)
                i += 1
            else:
                if tos is None:
                    tos = _index_tos(buf)
                j = tos.get(ev.cookie, -1)
                if j > i - 1 and j not in consumed:
                    consumed.add(j)
                    out.append(ev)
                    out.append(buf[j])
                elif i - 1 < overflow_at:
                    pass  # a half lost with the overflow: the rescan repairs the view
                elif now >= self._arrival.get(ev.cookie, now) + self.timeout:
                    out.append(ev)  # expired: moved out of the tree
                else:
                    self._held = [e for k, e in enumerate(buf[i - 1 :], i - 1) if k not in consumed]
                    return out
            self._arrival.pop(ev.cookie, None)
        self._held = []
        return out

    @staticmethod
    def _pair_all(buf: list[RawEvent]) -> list[RawEvent | None]:
        """Pair what can be paired in ``buf``; unpaired MOVED_FROMs become None."""
        tos = _index_tos(buf)
        consumed: set[int] = set()
        out: list[RawEvent | None] = []
        for k, ev in enumerate(buf):
            if k in consumed:
                continue
            if ev.mask & _FROM:
                j = tos.get(ev.cookie, -1)
                if j > k and j not in consumed:
                    consumed.add(j)
                    out += (ev, buf[j])
                else:
                    out.append(None)
            else:
                out.append(ev)
        return out


def _index_tos(buf: list[RawEvent]) -> dict[int, int]:
    """cookie -> index of the first MOVED_TO with that cookie in ``buf``."""
    tos: dict[int, int] = {}
    for k, ev in enumerate(buf):
        if ev.mask & _TO and ev.cookie not in tos:
            tos[ev.cookie] = k
    return tos


def _last_overflow(buf: list[RawEvent]) -> int:
    """Index of the last IN_Q_OVERFLOW record in ``buf``, or -1."""
    for k in range(len(buf) - 1, -1, -1):
        if buf[k].mask & _OVERFLOW:
            return k
    return -1
