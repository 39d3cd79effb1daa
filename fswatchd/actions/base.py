"""What every action shares: the ``Job`` it is given, the ``Outcome`` it returns, the protocol.

An action is one side effect for one matched event (or batch): run an argv, run a shell
script, POST a webhook. Actions never raise for their own failures: a child that exits
non-zero, a timeout, a refused connection all come back as an ``Outcome`` with ``ok=False``
and are logged here, once, by :func:`log_outcome`. Only ``asyncio.CancelledError``
propagates (daemon shutdown), after the action has cleaned up after itself.

Log records carry structured fields in ``extra={"journal": {...}}``; the journald handler
turns them into journal fields (``journalctl FSWATCHD_RULE=backup``).
"""

from __future__ import annotations

import logging
import signal
from dataclasses import dataclass
from typing import Protocol

from ..events import FsEvent, mask_names, show_path
from ..message_ids import MESSAGE_ID_ACTION_FAILED as MESSAGE_ID_ACTION_FAILED
from ..message_ids import MESSAGE_ID_ACTION_OK as MESSAGE_ID_ACTION_OK
from ..message_ids import MESSAGE_ID_ACTION_RETRY as MESSAGE_ID_ACTION_RETRY

__all__ = [
    "LOGGER_NAME",
    "MESSAGE_ID_ACTION_FAILED",
    "MESSAGE_ID_ACTION_OK",
    "MESSAGE_ID_ACTION_RETRY",
    "Action",
    "Job",
    "Outcome",
    "log_outcome",
]

#: The logger every action writes to: child output lines, retries, outcomes.
LOGGER_NAME = "fswatchd.actions"


_log = logging.getLogger(LOGGER_NAME)


@dataclass(frozen=True, slots=True)
class Job:
    """One unit of work for one rule, made by the dispatcher.

    Attributes:
        rule: the rule's name.
        event_id: unique across daemon restarts; the webhook delivery id.
        event: the event; for a coalesced (debounced) entry, the latest one.
        root: the rule's watch root the event matched under (exact bytes).
        relpath: the event's path relative to ``root`` (exact bytes).
        paths: for batch rules, every path of the batch, in order; ``()`` otherwise.
        merged: how many events this job stands for (>= 1).
    """

    rule: str
    event_id: str
    event: FsEvent
    root: bytes
    relpath: bytes
    paths: tuple[bytes, ...] = ()
    merged: int = 1


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one action run for one job.

    Attributes:
        rule: the rule's name.
        action: ``"run"``, ``"shell"`` or ``"webhook"``.
        event_id: the job's event id.
        path: the job's event path (exact bytes), ``None`` for an overflow event.
        ok: the action succeeded (exit status 0; HTTP 2xx).
        exit_status: the child's exit status, ``None`` if it was killed by a signal or
            never started (and for webhooks).
        signal: the signal number that killed the child, else ``None``.
        http_status: the last HTTP status received, ``None`` if none (and for commands).
        duration: seconds from start to finish, retries and back-off included.
        attempt: attempts used (webhooks retry; commands always 1).
        error: a sentence saying what went wrong, ``None`` when ``ok``.
        timed_out: the child was stopped because it ran past its timeout, or the last
            webhook attempt timed out.
        mask: the event's mask (``Mask`` bits as int), 0 when unknown.
    """

    rule: str
    action: str
    event_id: str
    path: bytes | None
    ok: bool
    exit_status: int | None = None
    signal: int | None = None
    http_status: int | None = None
    duration: float = 0.0
    attempt: int = 1
    error: str | None = None
    timed_out: bool = False
    mask: int = 0


class Action(Protocol):
    """An action of one rule; built once per rule (and per reload), run once per job."""

    @property
    def kind(self) -> str:
        """``"run"``, ``"shell"`` or ``"webhook"``."""
        ...

    async def run(self, job: Job) -> Outcome:
        """Carry out the action for ``job``.

        Returns:
            the :class:`Outcome`; failures are outcomes with ``ok=False``, never exceptions.
        Raises:
            asyncio.CancelledError: only on cancellation, after cleaning up (a command's
                process group is terminated, then killed, before this propagates).
        """
        ...


def _describe(outcome: Outcome) -> tuple[str, str | None]:
    """The human half of the outcome record: what happened, in a few words, and the error
    sentence that says more (None when it would only repeat them)."""
    if outcome.timed_out:
        what = "timed out"
    elif outcome.signal is not None:
        what = f"killed by signal {outcome.signal}"
    elif outcome.exit_status is not None:
        what = f"exited {outcome.exit_status}"
    elif outcome.http_status is not None:
        what = f"HTTP {outcome.http_status}"
    else:
        what = "ok" if outcome.ok else "failed"
    if outcome.error and not outcome.ok and outcome.error != what:
        return what, outcome.error
    return what, None


def _signal_name(number: int) -> str:
    """``SIGKILL`` for 9; ``SIG42`` for a number without a name."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"SIG{number}"


def log_outcome(outcome: Outcome) -> None:
    """Log one record for ``outcome``: INFO when ok, WARNING when it failed.

    The record's ``journal`` extra holds FSWATCHD_RULE, FSWATCHD_PATH (bytes),
    FSWATCHD_ACTION, FSWATCHD_EVENT_ID, FSWATCHD_EXIT_STATUS (``-N`` when killed by
    signal N), FSWATCHD_SIGNAL (``SIGKILL``) and FSWATCHD_HTTP_STATUS (when known),
    FSWATCHD_DURATION_MS, FSWATCHD_ATTEMPT, FSWATCHD_MASK (the event, when known) and
    MESSAGE_ID (:data:`MESSAGE_ID_ACTION_OK` or :data:`MESSAGE_ID_ACTION_FAILED`).
    """
    level = logging.INFO if outcome.ok else logging.WARNING
    if not _log.isEnabledFor(level):
        return
    fields: dict[str, object] = {
        "MESSAGE_ID": MESSAGE_ID_ACTION_OK if outcome.ok else MESSAGE_ID_ACTION_FAILED,
        "FSWATCHD_RULE": outcome.rule,
        "FSWATCHD_PATH": outcome.path if outcome.path is not None else b"",
        "FSWATCHD_ACTION": outcome.action,
        "FSWATCHD_EVENT_ID": outcome.event_id,
        "FSWATCHD_DURATION_MS": round(outcome.duration * 1000),
        "FSWATCHD_ATTEMPT": outcome.attempt,
    }
    if outcome.mask:
        fields["FSWATCHD_MASK"] = "|".join(mask_names(outcome.mask))
    if outcome.exit_status is not None:
        fields["FSWATCHD_EXIT_STATUS"] = outcome.exit_status
    if outcome.signal is not None:
        # The asyncio convention (-N) in EXIT_STATUS, the name in SIGNAL (message_ids.py).
        fields["FSWATCHD_EXIT_STATUS"] = -outcome.signal
        fields["FSWATCHD_SIGNAL"] = _signal_name(outcome.signal)
    if outcome.http_status is not None:
        fields["FSWATCHD_HTTP_STATUS"] = outcome.http_status
    path = show_path(outcome.path) if outcome.path is not None else "-"
    what, error = _describe(outcome)
    # The error last, after the duration: "failed in 3 ms (attempt 1): cannot run ...";
    # a duration after it read as part of it ("the daemon is stopping in 4039 ms").
    _log.log(
        level,
        "%s for %s %s in %d ms (attempt %d)%s",
        outcome.action,
        path,
        what,
        fields["FSWATCHD_DURATION_MS"],
        outcome.attempt,
        "" if error is None else f": {error}",
        extra={"journal": fields},
    )
