"""Stable journal MESSAGE_IDs (128-bit, 32 lowercase hex digits) and structured field names.

A MESSAGE_ID names a kind of event for good: ``journalctl MESSAGE_ID=<id>`` finds every
occurrence across versions, and ``journalctl -x`` shows the explanation from the catalog
``systemd/fswatchd.catalog`` (catalog(7)), which repeats these values. Never change a value
once released; add a new one instead.

Field names follow systemd.journal-fields(7): uppercase letters, digits and ``_`` only, not
starting with ``_`` (journald silently drops anything else).
"""

from __future__ import annotations

__all__ = [
    "FIELDS",
    "FIELD_ACTION",
    "FIELD_ATTEMPT",
    "FIELD_DURATION_MS",
    "FIELD_EVENT_ID",
    "FIELD_EXIT_STATUS",
    "FIELD_HTTP_STATUS",
    "FIELD_MASK",
    "FIELD_PATH",
    "FIELD_RULE",
    "FIELD_SIGNAL",
    "FIELD_STREAM",
    "MESSAGE_ID_ACTION_FAILED",
    "MESSAGE_ID_ACTION_OK",
    "MESSAGE_ID_ACTION_RETRY",
    "MESSAGE_ID_OVERFLOW_REPAIRED",
    "MESSAGE_ID_READY",
    "MESSAGE_ID_RELOAD_FAILED",
    "MESSAGE_ID_RELOAD_OK",
    "MESSAGE_ID_STOPPING",
    "MESSAGE_ID_WATCH_LIMIT",
]

# The three action ids are defined by the actions module (fswatchd.actions.base, which
# logs the outcomes) and repeated here for the catalog and ``fswatchd log``; a unit test
# keeps the two in step.
#: An action finished successfully (exit status 0, or a 2xx webhook answer).
MESSAGE_ID_ACTION_OK = "0081743da4e24ba7a917363e98f26e3f"
#: An action failed for good: non-zero exit, killed by a signal, timed out, HTTP error.
MESSAGE_ID_ACTION_FAILED = "6cd85ade169d460ea256c2f3f0411640"
#: A webhook attempt failed and will be retried.
MESSAGE_ID_ACTION_RETRY = "a575f33ec714414097107276b6a4f0ba"
#: The kernel queue overflowed (IN_Q_OVERFLOW) and the rescan repaired the view.
MESSAGE_ID_OVERFLOW_REPAIRED = "ca6bd0ad4aa548b997cb7a3e72f00ffe"
#: A reload (SIGHUP) validated and applied the new rules file.
MESSAGE_ID_RELOAD_OK = "937e0463324541baade8c6652b06337e"
#: A reload was rejected; the previous rules stay in force.
MESSAGE_ID_RELOAD_FAILED = "8b79b183701a4879aa4ba3f2d8351818"
#: inotify_add_watch(2) failed with ENOSPC: fs.inotify.max_user_watches reached.
MESSAGE_ID_WATCH_LIMIT = "14655605fcbd4506ab07055f5b5a7470"
#: The daemon started and every watch is in place (sent with READY=1).
MESSAGE_ID_READY = "d808b082142146ac95ef8b98d88de6cd"
#: The daemon began its graceful stop (sent with STOPPING=1).
MESSAGE_ID_STOPPING = "96a1817447a945b1a8d3b44380fa7b7b"

FIELD_RULE = "FSWATCHD_RULE"
"""The rule's name (str)."""
FIELD_PATH = "FSWATCHD_PATH"
"""The event's path, exact bytes (not necessarily UTF-8)."""
FIELD_MASK = "FSWATCHD_MASK"
"""The event's mask as inotify(7) names joined with ``|``."""
FIELD_ACTION = "FSWATCHD_ACTION"
"""Which action of the rule ran (its kind and index, as the actions module names it)."""
FIELD_EVENT_ID = "FSWATCHD_EVENT_ID"
"""Ties an action's outcome to the output lines of the same run."""
FIELD_EXIT_STATUS = "FSWATCHD_EXIT_STATUS"
"""A child's exit status (int); absent when a signal ended it (see FSWATCHD_SIGNAL)."""
FIELD_SIGNAL = "FSWATCHD_SIGNAL"
"""The number of the signal that ended a child (int), when one did."""
FIELD_DURATION_MS = "FSWATCHD_DURATION_MS"
"""Wall time of the action in milliseconds (int)."""
FIELD_HTTP_STATUS = "FSWATCHD_HTTP_STATUS"
"""A webhook's HTTP status code (int)."""
FIELD_ATTEMPT = "FSWATCHD_ATTEMPT"
"""1-based attempt number of a retried action (int)."""
FIELD_STREAM = "FSWATCHD_STREAM"
"""``stdout`` or ``stderr`` on an entry that carries one line of a child's output."""

FIELDS = (
    FIELD_RULE,
    FIELD_PATH,
    FIELD_MASK,
    FIELD_ACTION,
    FIELD_EVENT_ID,
    FIELD_EXIT_STATUS,
    FIELD_SIGNAL,
    FIELD_DURATION_MS,
    FIELD_HTTP_STATUS,
    FIELD_ATTEMPT,
    FIELD_STREAM,
)
"""Every FSWATCHD_* field fswatchd writes."""
