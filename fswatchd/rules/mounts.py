"""Which filesystem a path is on, from proc(5) ``/proc/self/mountinfo``; pure parsing.

inotify(7) reports only changes made through the local kernel. On network and
user-space filesystems, changes made by another host (or by the FUSE server itself) are
never seen, so fswatchd warns when a root lies on one.
"""

from __future__ import annotations

import re

__all__ = ["REMOTE_HINT", "REMOTE_TYPES", "is_remote", "mount_of", "parse_mountinfo"]

#: Filesystem types on which inotify misses changes made elsewhere (plus every ``fuse.*``).
REMOTE_TYPES = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "virtiofs", "fuse", "ceph", "glusterfs"}
)
#: What the warning tells the operator.
REMOTE_HINT = (
    "inotify sees only changes made on this host, not those made by other clients or the "
    "server; events may be missed"
)
_OCTAL = re.compile(r"\\([0-7]{3})")


def is_remote(fstype: str) -> bool:
    """Whether ``fstype`` (mountinfo's type field) is one where inotify misses changes."""
    return fstype in REMOTE_TYPES or fstype.startswith("fuse.")


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as ``\\ooo`` octal."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[tuple[str, str]]:
    """``[(mount_point, fstype), ...]`` from the text of a mountinfo file, in file order.

    Format (proc(5)): ``id parent major:minor root mount_point options [optional...] -
    fstype source super_options``. Malformed lines are skipped.
    """
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(" "), right.split(" ")
        if sep and len(fields) >= 5 and tail[0]:
            mounts.append((_unescape(fields[4]), tail[0]))
    return mounts


def mount_of(path: str, mounts: list[tuple[str, str]]) -> tuple[str, str] | None:
    """The mount holding absolute ``path``: ``(mount_point, fstype)`` with the longest
    mount point that is ``path`` or a parent of it; the last one listed wins a tie (it is
    mounted over the others). None when no mount covers it.
    """
    best: tuple[str, str] | None = None
    for point, fstype in mounts:
        prefix = point if point.endswith("/") else point + "/"
        if (path == point or path.startswith(prefix)) and (
            best is None or len(point) >= len(best[0])
        ):
            best = (point, fstype)
    return best
