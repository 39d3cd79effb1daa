"""Running one job: a rule's actions in order, with the dispatcher as their failure boundary."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from ..actions.base import Action, Job, Outcome, log_outcome
from ..events import show_path
from ..workqueue import PendingEntry
from .model import DispatchRule

__all__ = ["JobResult", "job_for", "run_job"]

_log = logging.getLogger("fswatchd.dispatch")


@dataclass(frozen=True, slots=True)
class JobResult:
    """How one job went.

    Attributes:
        failed: at least one action's outcome had ``ok=False`` (raising counts).
        crashed: actions that raised instead of returning an Outcome.
        ran: actions that were run (fewer than the rule's when stop_on_failure cut in).
    """

    failed: bool
    crashed: int
    ran: int


def job_for(entry: PendingEntry[DispatchRule]) -> Job:
    """The :class:`Job` of a pending entry that is about to start (logged at DEBUG)."""
    job = Job(
        rule=entry.rule_name,
        event_id=entry.event_id,
        event=entry.event,
        root=entry.root,
        relpath=entry.relpath,
        paths=tuple(entry.paths) if entry.paths is not None else (),
        merged=entry.merged,
    )
    if _log.isEnabledFor(logging.DEBUG):
        _log.debug(
            "rule %s: job %s for %s (%d events merged, %d paths)",
            job.rule, job.event_id, show_path(job.event.path or b""), job.merged,
            len(job.paths),
        )  # fmt: skip
    return job


async def run_job(rule: DispatchRule, job: Job, clock: Callable[[], float]) -> JobResult:
    """Run ``rule.actions`` for ``job`` in order; never raises but CancelledError.

    Args:
        rule: the rule object the job was queued with (a reload does not change it).
        job: what every action is given.
        clock: monotonic seconds, for the duration of an action that raised.
    Returns:
        a :class:`JobResult`. With ``rule.stop_on_failure`` the first failed outcome ends
        the job and one INFO line names the skipped actions.
    Raises:
        asyncio.CancelledError: the job was cancelled (the running action cleans up first).
    """
    actions = rule.actions
    failed = False
    crashed = 0
    ran = 0
    for index, action in enumerate(actions):
        ran += 1
        outcome = await _run_action(action, job, clock)
        if outcome is None:
            crashed += 1
            ok = False
        else:
            ok = outcome.ok
        if ok:
            continue
        failed = True
        if rule.stop_on_failure and index + 1 < len(actions):
            _log.info(
                "rule %s: action %d (%s) failed for %s; skipping the %d later action(s) "
                "(stop_on_failure)",
                job.rule,
                index + 1,
                action.kind,
                show_path(job.event.path or b""),
                len(actions) - index - 1,
                extra={"journal": {"FSWATCHD_RULE": job.rule, "FSWATCHD_PATH": job.event.path}},
            )
            break
    return JobResult(failed, crashed, ran)


async def _run_action(action: Action, job: Job, clock: Callable[[], float]) -> Outcome | None:
    """``action.run(job)``; None if it raised (logged here with its traceback, once).

    Raises:
        asyncio.CancelledError: the job was cancelled (the daemon's stop); the action has
            cleaned up (a child is terminated first) and its failed outcome is logged.
    """
    start = clock()
    try:
        return await action.run(job)
    except asyncio.CancelledError:
        # Every action ends in one outcome: this one's is that the stop cut it short.
        error = "stopped before it finished: the daemon is stopping"
        log_outcome(_failed(action, job, clock() - start, error))
        raise
    except Exception as exc:
        # The Action protocol says failures come back as outcomes; one that raises is a
        # bug in that action, and must cost only this job, never the daemon.
        _log.error(
            "rule %s: action %s raised for %s; counted as failed",
            job.rule,
            action.kind,
            show_path(job.event.path or b""),
            exc_info=True,
            extra={"journal": {"FSWATCHD_RULE": job.rule, "FSWATCHD_EVENT_ID": job.event_id}},
        )
        error = f"the action raised {type(exc).__name__}: {exc}"
        log_outcome(_failed(action, job, clock() - start, error))
        return None


def _failed(action: Action, job: Job, duration: float, error: str) -> Outcome:
    """The failed outcome of an action that returned none itself."""
    return Outcome(
        rule=job.rule,
        action=action.kind,
        event_id=job.event_id,
        path=job.event.path,
        mask=job.event.mask,
        ok=False,
        duration=max(0.0, duration),
        error=error,
    )
