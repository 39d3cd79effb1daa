"""Per-rule state and the queue-limit policy: merge above ``queue_limit``, drop at the hard cap.

An *episode* starts when a rule's pending work reaches ``queue_limit`` (one WARNING) and
ends when a job start leaves it at half the limit or less (one WARNING with the count, if
events were dropped). Between the two, events for a path that already has a pending entry
merge into it; events for other paths are still queued until the hard cap
(``queue_limit * hard_cap_factor``), beyond which they are dropped: counted, and one ERROR
per episode.
"""

from __future__ import annotations

import logging

from .model import DispatchRule

__all__ = ["RuleState", "end_episode", "note_pending", "room_for_new"]

_log = logging.getLogger("fswatchd.dispatch")


class RuleState:
    """Per rule name: the latest rule object, its running jobs, its episode flags."""

    __slots__ = ("drops", "listed", "name", "over_limit", "rule", "running", "running_keys")

    def __init__(self, rule: DispatchRule) -> None:
        self.name = rule.name
        self.rule = rule
        self.running = 0
        self.running_keys: set[bytes] = set()
        self.listed = False  # on the dispatcher's ready-rules FIFO
        self.over_limit = False
        self.drops = 0  # events dropped at the hard cap in the current episode


def _fields(state: RuleState) -> dict[str, object]:
    return {"journal": {"FSWATCHD_RULE": state.name}}


def note_pending(state: RuleState, pending: int) -> bool:
    """True if ``pending`` units reach the rule's queue_limit; logs an episode's start once."""
    limit = state.rule.queue_limit
    if pending < limit:
        return False
    if not state.over_limit:
        state.over_limit = True
        _log.warning(
            "rule %s: %d jobs pending, over queue_limit %d: events for pending paths now "
            "merge into them until the queue drains to half",
            state.name,
            pending,
            limit,
            extra=_fields(state),
        )
    return True


def room_for_new(state: RuleState, pending: int, hard_cap_factor: int) -> bool:
    """False (logged once per episode, the caller counts it) at the rule's hard cap."""
    limit = state.rule.queue_limit
    if pending < limit * hard_cap_factor:
        return True
    state.drops += 1
    if state.drops == 1:
        _log.error(
            "rule %s: %d jobs pending, the hard cap (%d x queue_limit %d): DROPPING events "
            "for paths not already pending until the queue drains; the actions are slower "
            "than the changes arrive",
            state.name,
            pending,
            hard_cap_factor,
            limit,
            extra=_fields(state),
        )
    return False


def end_episode(state: RuleState, pending: int) -> None:
    """Close the rule's episode if ``pending`` is at half its queue_limit or less."""
    if not state.over_limit or pending > state.rule.queue_limit // 2:
        return
    if state.drops:
        _log.warning(
            "rule %s: queue back under its limit; %d events were dropped at the hard cap",
            state.name,
            state.drops,
            extra=_fields(state),
        )
    state.over_limit = False
    state.drops = 0
