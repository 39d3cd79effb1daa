"""Read the kernel's inotify limits, for error messages and start-up logs (inotify(7)).

The limits are per user (real uid), shared with every other inotify user of that uid:

* ``fs.inotify.max_user_watches`` (``/proc/sys/fs/inotify/max_user_watches``), and since
  Linux 5.11 also per user namespace ``/proc/sys/user/max_inotify_watches``;
* ``fs.inotify.max_user_instances`` (and ``/proc/sys/user/max_inotify_instances``);
* ``fs.inotify.max_queued_events``: the per-instance queue length before IN_Q_OVERFLOW.
"""

from __future__ import annotations

__all__ = ["instance_limit", "queued_events_limit", "watch_limit"]

_PROC = "/proc/sys"


def _read_int(path: str) -> int | None:
    """The integer in a /proc/sys file, or None when it is missing or unreadable."""
    try:
        with open(path, "rb") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def _smallest(*paths: str) -> int | None:
    """The smallest of the limits found at ``paths``; the kernel enforces each of them."""
    values = [v for v in map(_read_int, paths) if v is not None]
    return min(values) if values else None


def watch_limit() -> int | None:
    """The effective per-user inotify watch limit (count), or None if it cannot be read.

    Returns the smaller of ``fs.inotify.max_user_watches`` and the user namespace's
    ``user.max_inotify_watches``, when present. Never raises.
    """
    return _smallest(f"{_PROC}/fs/inotify/max_user_watches", f"{_PROC}/user/max_inotify_watches")


def instance_limit() -> int | None:
    """The effective per-user inotify instance limit (count), or None; never raises."""
    return _smallest(
        f"{_PROC}/fs/inotify/max_user_instances", f"{_PROC}/user/max_inotify_instances"
    )


def queued_events_limit() -> int | None:
    """``fs.inotify.max_queued_events`` (events per instance), or None; never raises."""
    return _read_int(f"{_PROC}/fs/inotify/max_queued_events")
