"""Retrying directories that are in the view but not watched (or not read) yet.

Two lists, both almost always empty:

* ``Placer.retry``: add_watch failed for a reason that lasts (ENOSPC: the watch limit,
  H11; EACCES, H17). Retried on a timer (ENOSPC) or when the directory's mode changes.
* ``Placer.lost``: add_watch or the scan failed with ENOENT/ENOTDIR at the path the tree
  gave. That is not final: the directory may be gone (its DELETE follows and removes the
  node, H23), or a rename of it or of a parent, queued by the kernel *before* the failure
  but not processed yet, moved it, and no DELETE will ever come. The directory is tried
  again by its current path after every batch, until it is watched (then scanned:
  synthetic events for its content, H01) or it leaves the view.

And one check: ``Placer.moved`` holds the directories that renames moved since the view
was last caught up with the kernel. Renames read late can meet watches placed after them
(``mkdir a; mv a t; mkdir b; mv b a``...: the watch placed for a CREATE is on whatever
directory has that name *now*), and then move the wrong node. Once every queued event is
processed, each moved directory's path must lead to its own watch, a directory that a
rename displaced must be gone (its IN_IGNORED processed), and a name a rename left must
not hold a directory the view lacks; :func:`misplaced` asks the kernel
(inotify_add_watch(2) returns the wd an inode already has) and lstat(2).
"""

from __future__ import annotations

import errno
import logging
import os
import stat

from .place import Placer
from .scan import GONE_ERRNOS
from .tree import UNWATCHED, Node

__all__ = ["misplaced", "retry_failed", "retry_lost"]

log = logging.getLogger(__name__)


def retry_failed(placer: Placer, err: int) -> None:
    """Try again to watch the directories of ``placer.retry`` that failed with ``err``.

    Quiet on failure. The content of a directory watched now is reported (synthetic
    events); one whose path is gone moves to ``placer.lost``.
    """
    tree = placer.tree
    for node in [n for n, e in placer.retry.items() if e == err]:
        parent = node.parent
        if not node.attached or parent is None:
            del placer.retry[node]
            continue
        path = tree.path(node)
        try:
            wd = placer.fd.add_watch(path, placer.dir_mask)
        except OSError as exc:
            if exc.errno in GONE_ERRNOS:  # gone, or its path is stale: see retry_lost
                del placer.retry[node]
                placer.lost[node] = path
            continue
        del placer.retry[node]
        child, fresh = placer.attach_wd(parent, node.name, path, wd)
        if fresh:
            placer.scan(child, emit=True)
    log.info("retried unwatched directories; %d still unwatched", len(placer.retry))


def retry_lost(placer: Placer, *, settled: bool) -> None:
    """Try again the directories in ``placer.lost``, each by its path in the tree now.

    Args:
        placer: the engine's Placer; events go to ``placer.out``.
        settled: False after a batch (events may still be unread: a failure just waits
            for the next batch); True when every event the kernel queued so far has been
            processed (nothing read, buffered, held by the pairer or queued).

    The event that explains a failure was queued before it, so once it is processed the
    tree's path is right or the node has left the view. A node that fails, while
    settled, at the very path that failed at its previous attempt is inexplicable (a file
    system mounted over a parent directory): reported once as an ERROR event (ENOENT) and
    left unwatched. So the set never keeps a node for ever, and each node costs one
    add_watch(2) (or one readdir) per batch while it waits.
    """
    tree = placer.tree
    for node, last in list(placer.lost.items()):
        del placer.lost[node]
        parent = node.parent
        if not node.attached or parent is None:
            continue
        path = tree.path(node)
        if node.wd != UNWATCHED:
            if tree.wds.get(node.wd) is node:
                placer.scan(node, emit=True)  # back in ``lost`` if it fails again
        elif placer.wants_watch(parent, path):
            _watch_lost(placer, node, parent, path)
        if settled and path == last and placer.lost.get(node) == path:
            del placer.lost[node]
            placer.emit_error(
                node,
                path,
                errno.ENOENT,
                f"cannot watch {os.fsdecode(path)!r}: the directory is in the view but not "
                "at its path, and no event explains it (a file system mounted over a parent "
                "directory?); its content is not reported",
            )


def _watch_lost(placer: Placer, node: Node, parent: Node, path: bytes) -> None:
    """add_watch a lost directory at ``path``; scan it when that works."""
    tree = placer.tree
    try:
        wd = placer.fd.add_watch(path, placer.dir_mask)
    except OSError as exc:
        if exc.errno in GONE_ERRNOS:
            placer.lost[node] = path
        else:
            placer.failed(node, path, exc)
        return
    other = tree.wds.get(wd)
    if other is None or not other.attached:
        if other is not None:
            tree.free(wd)
        tree.set_wd(node, wd)  # the same node: no re-parent, cached paths stay valid
        placer.scan(node, emit=True)
        return
    child, fresh = placer.attach_wd(parent, node.name, path, wd)
    if fresh:
        placer.scan(child, emit=True)


def misplaced(placer: Placer) -> bool:
    """Whether a directory moved since the last check is not at its path (see above).

    Call only when caught up (nothing read and nothing queued). Empties
    ``placer.moved``; a wd that add_watch creates for another directory at that path is
    removed again.
    """
    moved, placer.moved = placer.moved, set()
    vacated, placer.vacated = placer.vacated, set()
    tree = placer.tree
    for parent, name in vacated:
        if not parent.attached or name in parent.dirs:
            continue
        try:  # a directory at a name a rename left, not in the view: its CREATE was
            if stat.S_ISDIR(os.lstat(tree.path(parent) + b"/" + name).st_mode):
                return True  # applied to another directory (read late), or never came
        except OSError:
            continue
    for node in moved:
        if node.wd == UNWATCHED or tree.wds.get(node.wd) is not node:
            continue  # unwatched, or its IN_IGNORED came: the directory is gone
        if not node.attached:
            return True  # displaced by a rename, yet its directory still exists somewhere
        try:
            if placer.probe(tree.path(node)) != node.wd:
                return True
        except OSError:
            return True
    return False
