"""Loop protection: keep a rule whose action writes into its own watched tree from running away.

Two cases, both per rule, both decided from event timing alone (the kernel does not say
which process made a change, see inotify(7) "Limitations and caveats"):

**Same path.** An event for path P that arrives while rule R's job for P runs, or within
``window`` seconds after it finished, is *self-caused*. A job started from a self-caused
entry extends P's *streak*; any other job resets it. When the streak would pass ``limit``
the job is withheld, R is *paused* for P (every event for it is dropped) until P has been
quiet for ``window`` seconds, and one WARNING is logged.

**Derived files** (an action that writes ``{path}.out``, which matches again, then
``{path}.out.out`` ...). A file Q in the same directory as P whose name starts with P's
*stem* (P's name up to its first ``.``) followed by a non-alphanumeric byte or the end, and
that has an event while R's job for P runs or within ``window`` after it, is P's child:
its depth is P's depth + 1. An event whose depth would pass ``max_chain`` is dropped, R is
paused for Q as above, and one WARNING is logged. Matching on the stem rather than on "same
directory" keeps a copy of many unrelated files into one directory from looking like a
chain.

All bookkeeping is bounded: a path is tracked only while R's job for it runs and for
``window`` seconds after (or while paused); expired records are swept in O(1) amortized.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import NamedTuple

from ..events import show_path

__all__ = ["FRESH", "LoopGuard", "Verdict"]

_log = logging.getLogger("fswatchd.dispatch")

# Bytes that continue a name's word: ASCII letters and digits, and every non-ASCII byte
# (UTF-8 letters), so that "photo1" is not read as a child of "photo".
_WORD = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") | frozenset(
    range(0x80, 0x100)
)


def _stem_end(name: bytes) -> int:
    """Length of ``name``'s stem: up to its first ``.`` after the first byte."""
    dot = name.find(b".", 1)
    return len(name) if dot == -1 else dot


def _split(path: bytes) -> tuple[bytes, bytes]:
    """``(directory, name)`` of an absolute path."""
    directory, _, name = path.rpartition(b"/")
    return directory, name


class Verdict(NamedTuple):
    """What :meth:`LoopGuard.on_event` decided for one event.

    Attributes:
        accept: act on the event; False means drop it (counted as suppressed).
        self_caused: the event came while (or just after) the rule's job for the path ran.
        depth: derived-file chain depth (0 = not derived from one of the rule's jobs).
    """

    accept: bool
    self_caused: bool
    depth: int


_DROP = Verdict(False, False, 0)
#: An event to act on, not caused by the rule's own jobs.
FRESH = Verdict(True, False, 0)


class _Trace:
    """What the guard remembers of one (rule, path) whose job runs or recently ran."""

    __slots__ = ("depth", "ended", "last_seen", "paused", "running", "streak", "swept")

    def __init__(self) -> None:
        self.running = False
        self.ended = float("-inf")
        self.streak = 0
        self.paused = False
        self.last_seen = float("-inf")
        self.depth = 0
        self.swept = False  # an expiry for it is in the sweep FIFO


class LoopGuard:
    """Same-path streaks and derived-file chains, per rule (see the module docstring).

    Args:
        window: seconds after a job during which events for its path (or its children)
            count as caused by it; also the quiet time that ends a pause.
        limit: consecutive self-caused jobs allowed per rule and path.
        max_chain: deepest derived-file chain a rule acts on.

    Times are the dispatcher's clock (seconds). Pure bookkeeping: no I/O, no timers.
    """

    def __init__(self, window: float, limit: int, max_chain: int) -> None:
        self.window = window
        self.limit = limit
        self.max_chain = max_chain
        self._traces: dict[tuple[str, bytes], _Trace] = {}
        # (rule, dir, stem) -> {name: trace}: the candidates for a derived file's parent.
        self._stems: dict[tuple[str, bytes, bytes], dict[bytes, _Trace]] = {}
        # (rule, dir) -> traces in that directory; lets most events skip the stem lookup.
        self._dirs: dict[tuple[str, bytes], int] = {}
        self._expiry: deque[tuple[float, str, bytes]] = deque()

    def __len__(self) -> int:
        """Number of (rule, path) pairs tracked now."""
        return len(self._traces)

    def on_event(self, rule: str, path: bytes, now: float) -> Verdict:
        """Classify one event of ``rule`` for absolute ``path`` at clock time ``now``."""
        self.sweep(now)
        trace = self._traces.get((rule, path))
        self_caused = False
        depth = 0
        if trace is not None:
            if trace.paused:
                if now - trace.last_seen < self.window:
                    trace.last_seen = now
                    return _DROP
                trace.paused = False
                trace.streak = 0
            elif trace.running or now - trace.ended < self.window:
                self_caused = True
                depth = trace.depth
        depth = max(depth, self._parent_depth(rule, path, now))
        if self.max_chain and depth > self.max_chain:
            self._cut_chain(rule, path, depth, now)
            return _DROP
        if not self_caused and not depth:
            return FRESH
        return Verdict(True, self_caused, depth)

    def on_start(self, rule: str, path: bytes, depth: int, self_caused: bool, now: float) -> bool:
        """A job of ``rule`` for ``path`` is about to start; False means withhold it.

        ``depth`` and ``self_caused`` are the job's entry's. Logs one WARNING when this
        start pauses the path.
        """
        trace = self._trace(rule, path)
        if trace.paused:
            return False
        trace.streak = trace.streak + 1 if self_caused else 0
        if self.limit and trace.streak > self.limit:
            trace.paused = True
            trace.last_seen = now
            self._schedule(rule, path, trace, now)
            _log.warning(
                "rule %s: loop protection: %s changed again during or just after this "
                "rule's own job, %d times in a row; not acting on it until it is quiet for "
                "%g s (loop_limit %d)",
                rule,
                show_path(path),
                trace.streak,
                self.window,
                self.limit,
                extra={"journal": {"FSWATCHD_RULE": rule, "FSWATCHD_PATH": path}},
            )
            return False
        trace.running = True
        trace.depth = depth
        return True

    def on_end(self, rule: str, path: bytes, now: float) -> None:
        """The job of ``rule`` for ``path`` (started by :meth:`on_start`) has ended."""
        trace = self._traces[(rule, path)]
        trace.running = False
        trace.ended = now
        self._schedule(rule, path, trace, now)

    def sweep(self, now: float) -> None:
        """Forget paths whose job ended (or pause began) ``window`` seconds ago and stayed quiet."""
        expiry = self._expiry
        while expiry and expiry[0][0] <= now:
            _, rule, path = expiry.popleft()
            trace = self._traces[(rule, path)]
            trace.swept = False
            if trace.running:
                continue  # on_end schedules it again
            until = (trace.last_seen if trace.paused else trace.ended) + self.window
            if until <= now:
                self._forget(rule, path)
            else:
                trace.swept = True
                expiry.append((until, rule, path))

    def _parent_depth(self, rule: str, path: bytes, now: float) -> int:
        """Depth of ``path`` as a derived file of a running or recent job; 0 if none."""
        directory, name = _split(path)
        if (rule, directory) not in self._dirs:
            return 0
        best = 0
        end = _stem_end(name)
        for i in range(1, end + 1):
            if i < len(name) and name[i] in _WORD:
                continue
            for other, trace in self._stems.get((rule, directory, name[:i]), {}).items():
                if other != name and (trace.running or now - trace.ended < self.window):
                    best = max(best, trace.depth + 1)
        return best

    def _cut_chain(self, rule: str, path: bytes, depth: int, now: float) -> None:
        """Pause ``rule`` for ``path`` (a too-deep derived file) and log it once."""
        trace = self._trace(rule, path)
        trace.paused = True
        trace.last_seen = now
        self._schedule(rule, path, trace, now)
        _log.warning(
            "rule %s: loop protection: %s looks derived from this rule's own output %d "
            "levels deep (max_chain %d); not acting on it",
            rule,
            show_path(path),
            depth,
            self.max_chain,
            extra={"journal": {"FSWATCHD_RULE": rule, "FSWATCHD_PATH": path}},
        )

    def _trace(self, rule: str, path: bytes) -> _Trace:
        """The trace of (rule, path), created and indexed if new."""
        trace = self._traces.get((rule, path))
        if trace is None:
            trace = self._traces[(rule, path)] = _Trace()
            directory, name = _split(path)
            self._stems.setdefault((rule, directory, name[: _stem_end(name)]), {})[name] = trace
            self._dirs[(rule, directory)] = self._dirs.get((rule, directory), 0) + 1
        return trace

    def _schedule(self, rule: str, path: bytes, trace: _Trace, now: float) -> None:
        """Queue ``trace`` for the sweep, once."""
        if not trace.swept:
            trace.swept = True
            self._expiry.append((now + self.window, rule, path))

    def _forget(self, rule: str, path: bytes) -> None:
        """Drop the trace of (rule, path) and its index entries."""
        del self._traces[(rule, path)]
        directory, name = _split(path)
        stem_key = (rule, directory, name[: _stem_end(name)])
        names = self._stems[stem_key]
        del names[name]
        if not names:
            del self._stems[stem_key]
        left = self._dirs[(rule, directory)] - 1
        if left:
            self._dirs[(rule, directory)] = left
        else:
            del self._dirs[(rule, directory)]
