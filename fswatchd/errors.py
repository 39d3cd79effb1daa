"""fswatchd's exception tree.

::

    FswatchdError
    ├── ConfigError          a rules file is invalid (file, line, dotted key, reason)
    ├── WatchError           a root cannot be watched at start (errno and path kept)
    │   └── WatchLimitError  ENOSPC: fs.inotify.max_user_watches reached
    └── ActionError          an action could not be carried out
        ├── CommandFailed    a run:/shell: child could not start, failed or timed out
        └── WebhookFailed    a webhook POST failed for good (after its retries)

Library code raises these; only ``fswatchd.cli`` maps them to exit codes (0 clean stop,
1 runtime failure, 2 usage, 3 invalid configuration at start).
"""

from __future__ import annotations

__all__ = [
    "ActionError",
    "CommandFailed",
    "ConfigError",
    "FswatchdError",
    "WatchError",
    "WatchLimitError",
    "WebhookFailed",
]


class FswatchdError(Exception):
    """The root of fswatchd's own errors."""


class ConfigError(FswatchdError):
    """A rules file is invalid.

    Args:
        file: the file's path as given (str), or ``None`` when not from a file.
        line: 1-based line of the offending node, or ``None`` when unknown.
        key: dotted key path, e.g. ``"rules[1].actions[0].run"``; ``""`` for the document.
        reason: what is wrong and, where it helps, what to write instead.

    ``str(err)`` is ``"rules.yaml:14: rules[1].actions[0].run: unknown placeholder {pth}"``.
    """

    def __init__(self, file: str | None, line: int | None, key: str, reason: str) -> None:
        self.file = file
        self.line = line
        self.key = key
        self.reason = reason
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = self.file or "<config>"
        if self.line is not None:
            where = f"{where}:{self.line}"
        return f"{where}: {self.key}: {self.reason}" if self.key else f"{where}: {self.reason}"


class WatchError(FswatchdError, OSError):
    """A root directory could not be watched; ``errno`` and ``filename`` are kept.

    Raised as ``WatchError(errno, message, filename)``; ``str()`` is the message alone,
    which already names the path and the remedy (OSError's form would repeat both).
    """

    def __str__(self) -> str:
        return str(self.strerror) if self.strerror else super().__str__()


class WatchLimitError(WatchError):
    """inotify_add_watch(2) failed with ENOSPC: the per-user watch limit is reached.

    The message names the sysctl ``fs.inotify.max_user_watches`` and the watches in use.
    """


class ActionError(FswatchdError):
    """An action could not be carried out."""


class CommandFailed(ActionError):
    """A ``run:`` or ``shell:`` child could not be started, exited non-zero or timed out."""


class WebhookFailed(ActionError):
    """A webhook POST failed for good: a final 4xx, or retries exhausted."""
