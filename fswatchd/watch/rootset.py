"""RootSet: the configured roots' lifecycle - watched, covered, gone, waited for (H19).

A root is watched and scanned like any directory, but its own end is different: when it
is moved, deleted or unmounted its watches go, the event is always reported (like an
ERROR, whatever the mask), and with ``rearm`` it is waited for (roots.Anchors) until it
can be watched again. A root that lies inside another root's tree, or is the same inode,
is *covered*: reported once, under the first path. Used by the Engine only.

inotify reports nothing under a root when one of its ancestors is renamed (``mv p q`` for
a root ``p/tree``): every later event would carry the stale path. So each root's
ancestors are *guarded*: watched for MOVE_SELF and DELETE_SELF only (IN_MASK_ADD, so an
ancestor that is also a watched directory keeps its mask). When one fires, each root
below it is looked up again by its path; a root whose path no longer leads to its watch
is gone, like a root moved away itself.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Container

from ..errors import WatchError, WatchLimitError
from ..events import FsEvent, Mask
from .place import Placer, limit_message
from .roots import Anchors
from .scan import GONE_ERRNOS
from .tree import UNWATCHED, Node

__all__ = ["RootSet"]

log = logging.getLogger(__name__)

_ISDIR = int(Mask.ISDIR)
_MOVE_SELF = int(Mask.MOVE_SELF)
#: add_watch mask of a guard on a root's ancestor. DONT_FOLLOW: an ancestor that is a
#: symbolic link is guarded itself (replacing or removing it is its DELETE_SELF).
GUARD_MASK = int(Mask.MOVE_SELF | Mask.DELETE_SELF | Mask.DONT_FOLLOW | Mask.MASK_ADD)
#: Events on a guard that mean the path to the roots below may have changed.
GUARD_FIRED = int(Mask.MOVE_SELF | Mask.DELETE_SELF | Mask.UNMOUNT | Mask.IGNORED)


class _Kept:
    """``wd in kept``: the wd is a watched directory's or a guard's (a Container)."""

    __slots__ = ("_guards", "_tree")

    def __init__(self, tree: Container[int], guards: Container[int]) -> None:
        self._tree, self._guards = tree, guards

    def __contains__(self, wd: object) -> bool:
        return wd in self._tree or wd in self._guards


class RootSet:
    """Roots by path: add, remove, gone, waited for.

    Args:
        placer: the watcher's Placer (fd, tree, masks, event list).
        recursive_of: root path -> recursive option, shared with the Placer (the dict is
            updated in place).
    """

    def __init__(self, placer: Placer, recursive_of: dict[bytes, bool]) -> None:
        self.placer = placer
        self.tree = placer.tree
        self.recursive_of = recursive_of
        self.anchors = Anchors(placer.fd)
        #: Roots that disappeared (moved, deleted, unmounted) since the caller last looked.
        self.gone_roots: list[bytes] = []
        #: Roots that lie inside another root's tree (reported under the first one).
        self.covered: set[bytes] = set()
        #: Guard wd -> the roots below that ancestor; root -> its guard wds.
        self.guards: dict[int, set[bytes]] = {}
        self._guards_of: dict[bytes, list[int]] = {}

    def add(self, path: bytes, recursive: bool, *, emit: bool, strict: bool) -> bool:
        """Watch and scan root ``path`` (absolute bytes); True when it is watched.

        Args:
            emit: report what the scan finds (synthetic events), False for the first walk.
            strict: raise on failure; else return False (ENOENT/ENOTDIR silently, other
                errors logged and reported as an ERROR event).
        Raises:
            WatchLimitError: ENOSPC, when ``strict``. WatchError: any other add_watch error.
        """
        self.recursive_of[path] = recursive
        try:
            wd = self.placer.fd.add_watch(path, self.placer.dir_mask)
        except OSError as exc:
            return self._failed(path, exc, strict)
        other = self.tree.wds.get(wd)
        if other is not None and other.attached:
            self.covered.add(path)
            log.warning(
                "root %r is already watched as %r; its events are reported there",
                os.fsdecode(path),
                os.fsdecode(self.tree.path(other)),
            )
            return True
        if other is not None:
            self.tree.free(wd)
        node = self.tree.add_root(path, wd)
        self.placer.scan(node, emit=emit)
        self._guard(path)
        return True

    def _failed(self, path: bytes, exc: OSError, strict: bool) -> bool:
        """Map a root's add_watch failure to WatchError (strict) or a report."""
        err = exc.errno or errno.EIO
        if err == errno.ENOSPC:
            msg = limit_message(path, len(self.tree.wds))
        else:
            msg = f"cannot watch root {os.fsdecode(path)!r}: {os.strerror(err)}"
        if strict:
            cls = WatchLimitError if err == errno.ENOSPC else WatchError
            raise cls(err, msg, os.fsdecode(path)) from exc
        if err not in GONE_ERRNOS:
            self.placer.emit_error(None, path, err, msg)
        return False

    @property
    def kept(self) -> _Kept:
        """The wds an anchor must not remove when it is done: the tree's and the guards'."""
        return _Kept(self.tree.wds, self.guards)

    @property
    def alive(self) -> int:
        """Number of configured roots currently watched."""
        return len(self.tree.roots) + len(self.covered)

    def arm(self, path: bytes) -> None:
        """Wait for missing root ``path`` to appear (rearm); watch it if it is there now."""
        for _ in range(256):  # each round descends one path component
            try:
                exists = self.anchors.arm(path, self.kept)
            except OSError as exc:
                log.warning("cannot wait for root %r to appear: %s", os.fsdecode(path), exc)
                return
            if not exists:
                return
            if self.add(path, self.recursive_of.get(path, True), emit=True, strict=False):
                self.anchors.disarm(path, self.kept)
                log.info("root %r is there: watching it", os.fsdecode(path))
                return

    def poll(self, rearm: bool) -> None:
        """Handle roots that went away or whose anchor fired since the last batch."""
        gone, self.gone_roots = self.gone_roots, []
        for path in gone:
            if rearm and path in self.recursive_of:
                log.warning("root %r is gone; waiting for it to appear again", os.fsdecode(path))
                self.arm(path)
            else:
                self.recursive_of.pop(path, None)
        while self.anchors.due:
            path = self.anchors.due.pop()
            if path in self.tree.roots or path not in self.recursive_of:
                self.anchors.disarm(path, self.kept)
            else:
                self.arm(path)

    def remove(self, path: bytes) -> None:
        """Stop watching root ``path`` (its watches are removed; no events)."""
        self.recursive_of.pop(path, None)
        self.covered.discard(path)
        self.anchors.disarm(path, self.kept)
        self._unguard(path)
        node = self.tree.roots.pop(path, None)
        if node is not None:
            self.placer.drop(node, emit=False, rm=True)
        self._unalias(path)

    def gone(self, node: Node, what: int) -> None:
        """Root ``node`` was moved, deleted or unmounted (``what``: the inotify bit): report
        it, drop its watches (H19)."""
        path = node.name
        # Always reported, whatever the mask: the watch itself changed (like ERROR).
        self.placer.out.append(FsEvent(path, what | _ISDIR, True, None, False, 0, path))
        if self.tree.roots.get(path) is node:
            del self.tree.roots[path]
        self._unguard(path)
        self.placer.drop(node, emit=False, rm=True)
        self.gone_roots.append(path)
        self._unalias(path)

    def uncovered(self, path: bytes) -> None:
        """A root's file system was unmounted: the directory under it is the root now."""
        recursive = self.recursive_of.get(path, True)
        if os.path.isdir(path) and self.add(path, recursive, emit=True, strict=False):
            self.gone_roots.remove(path)

    def _unalias(self, path: bytes) -> None:
        """Root ``path`` left: a directory of another root's tree that was not watched as
        its second path (nested roots listed inner first) is watched and scanned now."""
        aliases = self.placer.aliases
        below = path + b"/"
        for node, first in list(aliases.items()):
            if first != path and not first.startswith(below):
                continue
            del aliases[node]
            parent = node.parent
            if node.attached and node.wd == UNWATCHED and parent is not None:
                self.placer.add_child(parent, node.name, emit=True)

    # -- guards on the roots' ancestors ----------------------------------------------

    def _guard(self, path: bytes) -> None:
        """Guard every ancestor of root ``path`` but ``/`` (which cannot be renamed): the
        path's own components, a symbolic link among them as the link itself, and the
        directories the links lead to (realpath).

        An ancestor that cannot be watched (EACCES for an unprivileged daemon) is left
        unguarded: a rename of it goes unnoticed, as it would without guards.
        """
        self._unguard(path)
        wds: list[int] = []
        for ancestor in _ancestors(path) | _ancestors(os.path.realpath(path)):
            try:
                wd = self.placer.fd.add_watch(ancestor, GUARD_MASK)
            except OSError:
                continue
            self.guards.setdefault(wd, set()).add(path)
            wds.append(wd)
        self._guards_of[path] = wds

    def _unguard(self, path: bytes) -> None:
        """Drop root ``path``'s guards; a guard watch nobody else uses is removed."""
        for wd in self._guards_of.pop(path, ()):
            below = self.guards.get(wd)
            if below is None:
                continue
            below.discard(path)
            if not below:
                del self.guards[wd]
                if wd not in self.tree.wds and wd not in self.anchors.wds:
                    self.placer.rm_watch(wd)

    def guard_event(self, wd: int, mask: int) -> None:
        """An event on guard ``wd``: look up each root below again (module docstring)."""
        if not mask & GUARD_FIRED:
            return
        for path in list(self.guards.get(wd, ())):
            node = self.tree.roots.get(path)
            if node is None:
                continue
            try:
                now = self.placer.probe(path)
            except OSError:
                now = None
            if now == node.wd:
                self._guard(path)  # renamed back, or another ancestor: guard the path again
                continue
            self.gone(node, _MOVE_SELF)


def _ancestors(path: bytes) -> set[bytes]:
    """Every ancestor of absolute ``path`` (bytes) but ``/``."""
    out: set[bytes] = set()
    parent = os.path.dirname(path)
    while parent != b"/":
        out.add(parent)
        parent = os.path.dirname(parent)
    return out
