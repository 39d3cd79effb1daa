"""``user:`` and ``group:`` of a command: resolved once, applied by subprocess at spawn time.

Privileges are dropped in the child between fork and exec by ``subprocess.Popen``'s own
``extra_groups``/``group``/``user`` arguments (setgroups(2), setregid(2), setreuid(2), in
that order), never by a ``preexec_fn``. Like systemd's ``User=``, a user brings its
supplementary groups (getgrouplist(3)); a ``group:`` replaces the primary group.
"""

from __future__ import annotations

import grp
import os
import pwd
from typing import Any

__all__ = ["resolve_credentials"]

#: The largest uid or gid: uid_t is 32 bits and (uid_t)-1 means "no change" to setreuid(2).
_MAX_ID = 2**32 - 2


def _number(name: str) -> int | None:
    """The id written as ``name`` in ASCII digits, or None for a name; ValueError past _MAX_ID.

    ``str.isdigit`` alone would take ``'٣'`` for 3; only ASCII digits make an id.
    """
    if not (name.isascii() and name.isdigit()):
        return None
    if int(name) > _MAX_ID:
        raise ValueError(f"{name} is not a valid id: ids run from 0 to {_MAX_ID}")
    return int(name)


def _lookup_user(user: str) -> pwd.struct_passwd:
    """getpwnam(3), or getpwuid(3) for a number."""
    uid = _number(user)
    try:
        return pwd.getpwuid(uid) if uid is not None else pwd.getpwnam(user)
    except KeyError:
        raise ValueError(f"user {user!r} does not exist (getent passwd {user})") from None


def _lookup_group(group: str) -> int:
    """The gid of a group name or number."""
    gid = _number(group)
    if gid is not None:
        return gid
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise ValueError(f"group {group!r} does not exist (getent group {group})") from None


def resolve_credentials(user: str | None, group: str | None) -> dict[str, Any]:
    """The subprocess.Popen arguments that run a child as ``user``/``group``.

    Args:
        user: a user name or uid, or ``None`` to keep the daemon's.
        group: a group name or gid, or ``None`` (the user's primary group, if a user is
            given; else the daemon's).
    Returns:
        ``{}`` when nothing changes; else ``user``, ``group`` and ``extra_groups``
        (the user's supplementary groups, or ``[]`` for ``group`` alone).
    Raises:
        ValueError: an unknown user or group, or a change of identity while the daemon is
            not running as root (it could not switch).
    """
    if user is None and group is None:
        return {}
    entry = _lookup_user(user) if user is not None else None
    gid = _lookup_group(group) if group is not None else None
    if gid is None and entry is not None:
        gid = entry.pw_gid
    uid = entry.pw_uid if entry is not None else None
    if os.geteuid() != 0:
        if uid in (None, os.geteuid()) and gid in (None, os.getegid()):
            return {}
        raise ValueError(
            f"cannot run as user {user or '-'} group {group or '-'}: fswatchd runs as uid "
            f"{os.geteuid()}, and only root can switch; remove user:/group: or run as root"
        )
    kwargs: dict[str, Any] = {"group": gid}
    if entry is not None:
        assert gid is not None
        kwargs["user"] = entry.pw_uid
        kwargs["extra_groups"] = os.getgrouplist(entry.pw_name, gid)
    else:
        kwargs["extra_groups"] = []
    return kwargs
