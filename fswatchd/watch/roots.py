"""Anchors: wait for a missing root to appear again (``rearm=True``, H19).

A root that does not exist (yet), or that was moved away or deleted, is *armed*: its
nearest existing ancestor gets a watch for CREATE/MOVED_TO (plus DELETE_SELF/MOVE_SELF,
in case the ancestor itself goes), added with IN_MASK_ADD so that an ancestor which is
also a watched directory of the tree keeps its own mask. When the next path component
appears, or the ancestor goes, the root is *due*: the engine tries to watch it again and
re-arms it one level further down if it is still not there.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Container

from .._inotify.fd import InotifyFd
from ..events import Mask, RawEvent
from .scan import GONE_ERRNOS

__all__ = ["ANCHOR_MASK", "Anchors"]

#: add_watch mask of an anchor (OR-ed into an existing watch of the same inode).
ANCHOR_MASK = int(
    Mask.CREATE | Mask.MOVED_TO | Mask.DELETE_SELF | Mask.MOVE_SELF | Mask.ONLYDIR | Mask.MASK_ADD
)
_APPEAR = int(Mask.CREATE | Mask.MOVED_TO)
_GONE = int(Mask.DELETE_SELF | Mask.MOVE_SELF | Mask.IGNORED)


class Anchors:
    """The armed roots: anchor wd -> {root path: next component name}.

    Args:
        fd: the inotify instance shared with the tree.
    """

    def __init__(self, fd: InotifyFd) -> None:
        self.fd = fd
        self.wds: dict[int, dict[bytes, bytes]] = {}
        self._anchor_of: dict[bytes, int] = {}
        #: Roots whose anchor fired: the caller should try them again.
        self.due: set[bytes] = set()

    def arm(self, root: bytes, tree_wds: Container[int]) -> bool:
        """Watch the nearest existing ancestor of ``root`` (absolute bytes).

        ``tree_wds``: the wds the tree uses (an anchor watch shared with them is kept).
        Returns True when the next component already exists (a race with its creation):
        the caller should try again right away. Raises OSError for errors other than
        ENOENT/ENOTDIR/EACCES on every ancestor (then the root cannot be armed).
        """
        self.disarm(root, tree_wds)
        child = root.rstrip(b"/") or b"/"
        parent = os.path.dirname(child)
        while True:
            try:
                wd = self.fd.add_watch(parent, ANCHOR_MASK)
                break
            except OSError as exc:
                if exc.errno not in GONE_ERRNOS | {errno.EACCES} or parent == b"/":
                    raise
            child, parent = parent, os.path.dirname(parent)
        name = os.path.basename(child)
        self.wds.setdefault(wd, {})[root] = name
        self._anchor_of[root] = wd
        return os.path.isdir(child)

    def disarm(self, root: bytes, tree_wds: Container[int]) -> None:
        """Forget ``root``'s anchor; remove the anchor watch when nobody else uses it."""
        wd = self._anchor_of.pop(root, None)
        self.due.discard(root)
        if wd is None:
            return
        armed = self.wds.get(wd, {})
        armed.pop(root, None)
        if not armed:
            self.wds.pop(wd, None)
            if wd not in tree_wds:
                try:
                    self.fd.rm_watch(wd)
                except OSError as exc:
                    if exc.errno != errno.EINVAL:
                        raise

    def note(self, ev: RawEvent) -> None:
        """Look at an event on an anchor wd; mark the roots that became due."""
        armed = self.wds.get(ev.wd)
        if not armed:
            return
        if ev.mask & _GONE:
            self.due.update(armed)
            if ev.mask & Mask.IGNORED:
                for root in armed:
                    self._anchor_of.pop(root, None)
                del self.wds[ev.wd]
        elif ev.mask & _APPEAR and ev.mask & Mask.ISDIR:
            self.due.update(root for root, name in armed.items() if name == ev.name)

    def armed(self) -> set[bytes]:
        """The roots currently armed."""
        return set(self._anchor_of)
