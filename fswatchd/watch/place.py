"""Placing watches: watch a directory, *then* scan it, recursing (the race scan, H01/H05).

``Placer`` owns the add_watch side of the watcher: the directory watch mask, the
``should_watch`` prune hook, the handling of a wd that already belongs to a node (moved,
revived or a second path to the same inode, H16) and the per-directory failures (EACCES,
ENOSPC: reported and kept in a retry list, H11/H17). ENOENT/ENOTDIR for a directory just
reported is not final: the directory may be gone (H23, its DELETE follows), or a rename of
it or of a parent that is not processed yet may have moved it (no DELETE follows). Such a
directory stays in the view and in ``lost``, and is tried again by its current path. What the
scan finds is appended to ``out`` as synthetic events: CREATE for every entry, and
CLOSE_WRITE too for regular files, so a CLOSE_WRITE rule never misses a file that was
written before its directory was watched.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from collections.abc import Callable

from .._inotify.fd import InotifyFd
from .._inotify.limits import watch_limit
from ..events import FsEvent, Mask
from ..message_ids import MESSAGE_ID_WATCH_LIMIT
from .scan import GONE_ERRNOS, read_dir, read_listing, same_inode
from .tree import KIND_REG, UNWATCHED, Node, WatchTree, is_ancestor, unpack_listing

__all__ = ["DIR_EVENTS", "WATCH_FLAGS", "Placer", "limit_message"]

log = logging.getLogger(__name__)

#: add_watch flags on every directory: no symlinks (H14), directories only, and no
#: events for children that are already unlinked.
WATCH_FLAGS = int(Mask.ONLYDIR | Mask.DONT_FOLLOW | Mask.EXCL_UNLINK)
#: What the tree itself needs to stay right (structure, and the per-file records).
DIR_EVENTS = int(
    Mask.CREATE
    | Mask.DELETE
    | Mask.MOVED_FROM
    | Mask.MOVED_TO
    | Mask.DELETE_SELF
    | Mask.MOVE_SELF
    | Mask.CLOSE_WRITE
    | Mask.MODIFY
    | Mask.ATTRIB
)
_ISDIR = int(Mask.ISDIR)
_CREATE_DIR = int(Mask.CREATE | Mask.ISDIR)
_CREATE = int(Mask.CREATE)
_CLOSE_WRITE = int(Mask.CLOSE_WRITE)
_ERROR_DIR = int(Mask.ERROR | Mask.ISDIR)
_MOVED_TO_DIR = int(Mask.MOVED_TO | Mask.ISDIR)
_new_event = tuple.__new__


def limit_message(path: bytes, in_use: int) -> str:
    """The ENOSPC sentence: which directory, the watches in use, the sysctl to raise."""
    limit = watch_limit()
    return (
        f"cannot watch {os.fsdecode(path)!r}: the inotify watch limit is reached "
        f"({in_use} watches in use by this watcher, fs.inotify.max_user_watches = {limit}); "
        "raise it, e.g. 'sysctl fs.inotify.max_user_watches=1048576', or exclude directories"
    )


class Placer:
    """Watch-then-scan for one inotify fd and one WatchTree.

    Args:
        fd: the inotify instance (add_watch / rm_watch).
        tree: the view to fill.
        dir_mask: the full add_watch mask for directories (WATCH_FLAGS | DIR_EVENTS | user).
        emit_mask: user mask; synthetic CREATE/CLOSE_WRITE are only appended when set in it.
        should_watch: prune hook, called with a directory's absolute path; False = leave it
            unwatched and do not descend (it stays in the view as a directory).
        recursive_of: root path -> whether that root is recursive.
    """

    def __init__(
        self,
        fd: InotifyFd,
        tree: WatchTree,
        *,
        dir_mask: int,
        emit_mask: int,
        should_watch: Callable[[bytes], bool] | None,
        recursive_of: dict[bytes, bool],
    ) -> None:
        self.fd = fd
        self.tree = tree
        self.dir_mask = dir_mask
        self.emit_mask = emit_mask
        self.should_watch = should_watch
        self.recursive_of = recursive_of
        self.out: list[FsEvent] = []
        #: Unwatched directories to try again: node -> errno (EACCES on IN_ATTRIB, ENOSPC
        #: when watches are freed).
        self.retry: dict[Node, int] = {}
        #: Directories with files whose records events made stale (see Node.dirty).
        self.dirty: set[Node] = set()
        #: Directories in the view that could not be watched (UNWATCHED) or read (watched)
        #: because their path was gone (ENOENT/ENOTDIR): node -> the path that failed.
        #: Almost always empty; see Engine.retry_lost.
        self.lost: dict[Node, bytes] = {}
        #: Unwatched second paths (see :meth:`alias`) -> the first path, watched then.
        self.aliases: dict[Node, bytes] = {}
        #: Directories moved by renames since the view was last checked, and the names
        #: they left (parent, name) (retry.misplaced).
        self.moved: set[Node] = set()
        self.vacated: set[tuple[Node, bytes]] = set()
        #: Directories whose file records a rename may have got wrong: a possible
        #: RENAME_EXCHANGE judged by what the file system holds when the pair is read,
        #: which later changes queued behind it can belie (resync.reconcile_files).
        self.unsure: set[Node] = set()
        #: (CLOCK_REALTIME, CLOCK_MONOTONIC) ns when the first walk without lstat began
        #: (records.changed_since_walk).
        self.walk_clock: tuple[int, int] | None = None

    # -- events ----------------------------------------------------------------------

    def emit(
        self,
        path: bytes,
        mask: int,
        root: bytes | None,
        src: bytes | None = None,
        *,
        syn: bool,
        cookie: int = 0,
    ) -> None:
        """Append one FsEvent if the user's mask selects it.

        ``cookie``: the kernel's rename cookie, for the MOVED_FROM/MOVED_TO events that
        report a kernel rename; 0 for everything else (synthetic events included).
        """
        if mask & self.emit_mask:
            self.out.append(
                _new_event(
                    FsEvent, (path, mask, bool(mask & _ISDIR), src, syn, cookie, root, 0, None)
                )
            )

    def emit_error(self, node: Node | None, path: bytes, err: int, message: str) -> None:
        """Log and append an ERROR event for a directory that could not be watched.

        ``node`` is the directory's node, or None for a root that has none (the root is
        then ``path`` itself). ENOSPC carries the "watch limit hit" MESSAGE_ID, which the
        journal catalog explains.
        """
        journal = {"MESSAGE_ID": MESSAGE_ID_WATCH_LIMIT} if err == errno.ENOSPC else {}
        log.warning("%s", message, extra={"journal": journal})
        root = path if node is None else self.tree.root_of(node)
        self.out.append(FsEvent(path, _ERROR_DIR, True, None, False, 0, root, err, message))

    def touch(self, node: Node, name: bytes) -> None:
        """A file's content or metadata changed: its record is no longer current."""
        files = node.files
        files[name] = files.get(name, 0) & ~1
        if node.dirty is None:
            node.dirty = set()
        node.dirty.add(name)
        self.dirty.add(node)

    # -- placing ---------------------------------------------------------------------

    def wants_watch(self, parent: Node, path: bytes) -> bool:
        """Whether a subdirectory of ``parent`` at ``path`` should get a watch."""
        root = self.tree.root_of(parent)
        if root is None or not self.recursive_of.get(root, True):
            return False
        return self.should_watch is None or self.should_watch(path)

    def add_child(self, parent: Node, name: bytes, *, emit: bool) -> Node:
        """A directory ``name`` appeared in ``parent``: watch it, scan it, recurse.

        The caller reports the directory itself; its content is reported (synthetic
        events) when ``emit`` is True. Returns the node; when the directory is not at its
        path any more, the node is unwatched and kept in ``lost``.
        """
        path = self.tree.path(parent) + b"/" + name
        if not self.wants_watch(parent, path):
            return self.tree.add_dir(parent, name, UNWATCHED)
        node, fresh = self.attach(parent, name, path)
        if node is not None and fresh:
            self.scan(node, emit=emit)
        return node

    def attach(self, parent: Node, name: bytes, path: bytes) -> tuple[Node, bool]:
        """add_watch ``path`` and put its node at ``parent``/``name``.

        Returns ``(node, fresh)``: ``fresh`` is True when the node is new and must be
        scanned. A failure (EACCES, ENOSPC, ...) leaves an unwatched node, reported and
        kept for a retry; ENOENT/ENOTDIR leave an unwatched node in ``lost`` (the path
        may be stale: a rename still unread; or the directory is gone: its DELETE
        follows and removes the node).
        """
        try:
            wd = self.fd.add_watch(path, self.dir_mask)
        except OSError as exc:
            if exc.errno in GONE_ERRNOS:
                node = self.tree.add_dir(parent, name, UNWATCHED)
                self.lost[node] = path
                return node, False
            node = self.tree.add_dir(parent, name, UNWATCHED)
            self.failed(node, path, exc)
            return node, False
        return self.attach_wd(parent, name, path, wd)

    def attach_wd(self, parent: Node, name: bytes, path: bytes, wd: int) -> tuple[Node, bool]:
        """Put watch ``wd`` (just returned by add_watch for ``path``) into the tree.

        A wd that already belongs to a node means (a) a detached node whose inode is
        back: replaced by a fresh node; (b) the same node: nothing to do; (c) an attached
        node at another path that is gone: a rename we have not seen (yet): re-parent it,
        emit MOVED_TO with src_path, and watch and scan whatever directory is at the old
        path now; (d) an attached node whose path still names the same inode: a second
        path (bind mount, H16): left unwatched, reported.
        """
        tree = self.tree
        other = tree.wds.get(wd)
        if other is None or not other.attached:
            if other is not None:
                tree.free(wd)
            return tree.add_dir(parent, name, wd), True
        if other.parent is parent and other.name == name:
            return other, False
        old = tree.path(other)
        if other.parent is None or same_inode(old, path) or is_ancestor(other, parent):
            node = tree.add_dir(parent, name, UNWATCHED)
            self.alias(node, path, old)
            return node, False
        old_parent, old_name = other.parent, other.name  # not None: checked above
        displaced = tree.move(other, parent, name)
        self.moved.add(other)
        self.vacated.add((old_parent, old_name))
        if displaced is not None:
            self.drop(displaced, emit=False)
            self.moved.add(displaced)
        self.emit(path, _MOVED_TO_DIR, tree.root_of(other), old, syn=True)
        if os.path.isdir(old) and not os.path.islink(old):
            # A directory at the old path is another one: ``mkdir a; mv a b; mkdir a`` read
            # late places a's watch on the second a, the rename then files it under b,
            # and this CREATE a finds it there. The first a is at b, never watched.
            self.emit(old, _CREATE_DIR, tree.root_of(old_parent), syn=True)
            self.add_child(old_parent, old_name, emit=True)
        return other, False

    def scan(self, top: Node, *, emit: bool) -> None:
        """Scan ``top`` (already watched), then watch-and-scan its subdirectories.

        Iterative, parents before children; each directory is watched before it is read.
        The common case (a new wd) is inlined: this loop places every initial watch.
        ``emit`` False is the initial walk: nothing is reported, and the paths of the new
        nodes are not cached (a path is cached when an event first needs it: a tree of
        100,000 quiet directories does not keep 100,000 paths).
        """
        tree = self.tree
        wds = tree.wds
        add_watch, mask, should = self.fd.add_watch, self.dir_mask, self.should_watch
        if not emit and self.walk_clock is None:
            self.walk_clock = (time.time_ns(), time.monotonic_ns())
        root = tree.root_of(top)
        recursive = root is not None and self.recursive_of.get(root, True)
        stack = [(top, tree.path(top))]
        while stack:
            node, path = stack.pop()
            if emit:
                # The tree's path, not the one stacked: a rename found by this very scan
                # (attach_wd) can have re-parented the node meanwhile.
                path = tree.path(node)
            dirs = self._read(node, path, root, emit)
            if dirs is None:
                continue
            base = path + b"/"
            node_dirs = tree.own_dirs(node) if dirs else node.dirs
            # A listing comes from this very readdir: none of its names is in ``dirs``.
            files = None if node.listed else node.files
            for name in dirs:
                if name in node_dirs:
                    continue
                if files:
                    files.pop(name, None)
                child_path = base + name
                child: Node | None = None
                fresh = False
                if not recursive or (should is not None and not should(child_path)):
                    tree.add_dir(node, name, UNWATCHED)
                else:
                    try:
                        wd = add_watch(child_path, mask)
                    except OSError:
                        child, fresh = self.attach(node, name, child_path)
                    else:
                        if wd in wds:
                            child, fresh = self.attach_wd(node, name, child_path, wd)
                        else:
                            child = wds[wd] = node_dirs[name] = Node(wd, node, name)
                            fresh = True
                if emit:
                    self.emit(child_path, _CREATE_DIR, root, syn=True)
                if fresh and child is not None:
                    stack.append((child, child_path))

    def _read(self, node: Node, path: bytes, root: bytes | None, emit: bool) -> list[bytes] | None:
        """Read ``node``'s directory at ``path`` and record its files (reported when ``emit``;
        the initial walk keeps them packed, see scan.read_listing).

        Returns its subdirectory names, or None when it cannot be read (reported, or kept
        in ``lost`` when its path is stale).
        """
        try:
            if emit:
                dirs, found = read_dir(path)
            else:
                dirs, listing = read_listing(path)
        except OSError as exc:
            if exc.errno not in GONE_ERRNOS:
                self.failed(node, path, exc)
            elif node.attached:  # watched, but its path is stale or it is gone
                self.lost[node] = path
            return None
        if emit:
            if found:
                self._scan_files(node, path + b"/", found, root, emit)
        elif listing:
            if node.dirs or node.file_count():
                self._scan_files(node, path + b"/", unpack_listing(listing), root, emit)
            else:
                node.set_listing(listing)
        return dirs

    def _scan_files(
        self, node: Node, base: bytes, found: dict[bytes, int], root: bytes | None, emit: bool
    ) -> None:
        """Record the non-directory entries a scan found; report them when ``emit``."""
        dirs = node.dirs
        if dirs:
            for name in found.keys() & dirs.keys():
                self.drop(dirs[name], emit=False)
        if node.files:
            node.files.update(found)
        else:
            node.files = found  # the scan's own dict: no copy
        if not emit:
            return
        for name, rec in found.items():
            self.emit(base + name, _CREATE, root, syn=True)
            if not rec >> 1 & 3 and rec & 1:  # KIND_REG, clean
                self.emit(base + name, _CLOSE_WRITE, root, syn=True)

    # -- removal ---------------------------------------------------------------------

    def drop(self, node: Node, *, emit: bool, rm: bool = False) -> None:
        """Detach ``node``'s subtree; optionally emit DELETEs (bottom-up) and rm_watch.

        Nodes stay in the wd map until their IN_IGNORED (H20); rm_watch is called at most
        once per wd (the node is detached right after), EINVAL from it is harmless (H03).
        """
        tree = self.tree
        if emit:
            self.emit_deletes(node, include_top=True)
        for wd in tree.detach(node):
            if rm:
                self.rm_watch(wd)
        if self.retry:
            for sub in [s for s in self.retry if not s.attached]:
                del self.retry[sub]

    def probe(self, path: bytes) -> int:
        """The wd of the directory at ``path`` now: inotify_add_watch(2) returns the one an
        inode already has. A wd the tree does not hold is removed again at once (the
        caller only compares it), so asking never leaves a stray watch.

        Raises:
            OSError: add_watch failed (ENOENT/ENOTDIR: nothing there now; EACCES, ...).
        """
        wd = self.fd.add_watch(path, self.dir_mask)
        if wd not in self.tree.wds:
            self.rm_watch(wd)
        return wd

    def rm_watch(self, wd: int) -> None:
        """inotify_rm_watch, tolerating EINVAL (the kernel already dropped it)."""
        try:
            self.fd.rm_watch(wd)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise

    def emit_deletes(self, node: Node, *, include_top: bool) -> None:
        """Synthetic DELETE events for ``node``'s subtree, children before parents."""
        tree = self.tree
        order = list(tree.walk(node))
        root = tree.root_of(node)
        for sub in reversed(order):
            base = tree.path(sub) + b"/"
            for name, _ in sub.file_items():
                self.emit(base + name, int(Mask.DELETE), root, syn=True)
            if sub is not node or include_top:
                self.emit(tree.path(sub), int(Mask.DELETE | Mask.ISDIR), root, syn=True)

    def emit_creates(self, node: Node) -> None:
        """Synthetic CREATE (+CLOSE_WRITE for regular files) for ``node``'s subtree."""
        tree = self.tree
        root = tree.root_of(node)
        for sub in tree.walk(node):
            path = tree.path(sub)
            self.emit(path, _CREATE_DIR, root, syn=True)
            for name, rec in sub.file_items():
                self.emit(path + b"/" + name, _CREATE, root, syn=True)
                if rec >> 1 & 3 == KIND_REG:
                    self.emit(path + b"/" + name, _CLOSE_WRITE, root, syn=True)

    # -- failures --------------------------------------------------------------------

    def failed(self, node: Node, path: bytes, exc: OSError) -> None:
        """A subdirectory could not be watched or read: report it, keep it for a retry."""
        err = exc.errno or errno.EIO
        if err == errno.ENOSPC:
            message = limit_message(path, len(self.tree.wds))
        elif err == errno.EACCES:
            message = (
                f"cannot watch {os.fsdecode(path)!r}: permission denied; grant read and "
                "search permission to the watching user (retried when its mode changes)"
            )
        else:
            message = f"cannot watch {os.fsdecode(path)!r}: {os.strerror(err)}"
        self.retry[node] = err
        self.emit_error(node, path, err, message)

    def alias(self, node: Node, path: bytes, first: bytes) -> None:
        """A second path to an inode already watched (bind mount, H16): report, skip."""
        message = (
            f"not watching {os.fsdecode(path)!r}: it is the directory already watched as "
            f"{os.fsdecode(first)!r} (bind mount or nested root); events inside it are "
            "reported under the first path only"
        )
        self.emit_error(node, path, errno.EEXIST, message)
        self.aliases[node] = first
