"""The overflow resync (H10): make the view equal the real trees again, reporting the diff.

After IN_Q_OVERFLOW every wd -> path mapping is suspect (renames may have been lost). The
resync walks every root (lstat, no follow) and calls inotify_add_watch on each directory
met: the kernel returns the existing wd for an inode it already watches, so a node met at
a new path was renamed (re-parented, reported as MOVED_TO with src_path), a new wd is a
new directory (watched, scanned, CREATE), and a node not met any more is gone (DELETE,
rm_watch). Files are compared by their packed records: an inode that left one name and
appeared at another is a MOVED_TO with src_path, a changed size or mtime is MODIFY +
CLOSE_WRITE, the rest CREATE / DELETE. Every event is emitted when its change is applied
to the view, so a consumer replaying the stream ends with the same view.

Files whose records still come from the initial walk (inode and kind only, no size or
mtime) are judged by their ctime instead (records.py).

:func:`reconcile_files` does the file part of this for a few directories only: those
whose file records a rename read late may have got wrong (``Placer.unsure``).

Known approximation: a file whose record is unknown (seen only through a CREATE that was
not yet lstat-ed) is reported as MODIFY + CLOSE_WRITE after an overflow - a possible
duplicate, never a miss.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import TypeVar

from ..events import Mask
from .place import Placer
from .records import changed_since_walk
from .scan import GONE_ERRNOS, read_dir, same_inode
from .tree import KIND_REG, UNWATCHED, Node, is_ancestor, is_walk_record, unpack_record

__all__ = ["reconcile_files", "resync"]

_CREATE_DIR = int(Mask.CREATE | Mask.ISDIR)
_MOVED_TO_DIR = int(Mask.MOVED_TO | Mask.ISDIR)
_Entry = tuple[Node, bytes, int]
_K = TypeVar("_K")


class _Resync:
    """One resync pass; see the module docstring."""

    def __init__(self, placer: Placer, *, writes: bool = True) -> None:
        self.placer = placer
        #: Whether a file still at its name (same inode, or one not known yet) is compared
        #: for changes (MODIFY + CLOSE_WRITE). False when only renames are in doubt
        #: (:func:`reconcile_files`): its own events reported its writes.
        self.writes = writes
        self.tree = placer.tree
        #: Nodes met by this pass (the walk's own scratch, not kept on the nodes).
        self.seen: set[Node] = set()
        self.counts: collections.Counter[str] = collections.Counter()
        self.vanished: list[_Entry] = []
        self.appeared: list[_Entry] = []
        self.modified: list[_Entry] = []
        self.limbo: set[Node] = set()

    def emit(self, node: Node, name: bytes, mask: int, src: bytes | None = None) -> None:
        """A synthetic event for entry ``name`` of ``node``."""
        path = self.tree.path(node) + b"/" + name
        self.placer.emit(path, mask, self.tree.root_of(node), src, syn=True)

    def evict(self, node: Node) -> None:
        """Take ``node`` out of its slot (reported deleted); it may be met again later."""
        self.placer.emit_deletes(node, include_top=True)
        self.tree.unlink(node)
        node.parent = None
        self.limbo.add(node)
        self.counts["deleted"] += 1

    def mark_seen(self, node: Node) -> None:
        """Mark ``node``'s subtree as met (it was just scanned afresh)."""
        for sub in self.tree.walk(node):
            self.seen.add(sub)

    def walk_dir(self, node: Node, stack: list[Node]) -> None:
        """Compare one directory with the disk; queue the subdirectories to compare."""
        path = self.tree.path(node)
        try:
            dirs, files = read_dir(path)
        except OSError as exc:
            if exc.errno not in GONE_ERRNOS:
                self.seen.add(node)
                self.placer.failed(node, path, exc)
            return
        self.seen.add(node)
        real_dirs = set(dirs)
        self.diff_files(node, files, real_dirs)
        for name, child in list(node.dirs.items()):
            if name not in real_dirs and (name in files or child.wd == UNWATCHED):
                self.evict(child)
        for name in dirs:
            self.diff_dir(node, name, path + b"/" + name, stack)

    def diff_files(self, node: Node, real: dict[bytes, int], real_dirs: set[bytes]) -> None:
        """Sort the files of ``node`` into vanished / appeared / modified."""
        files = node.files
        for name in [n for n in files if n not in real]:
            if name in real_dirs:
                del files[name]
                self.emit(node, name, int(Mask.DELETE))
                self.counts["deleted"] += 1
            else:
                self.vanished.append((node, name, files[name]))
        for name, rec in real.items():
            old = files.get(name)
            if old is None:
                child = node.dirs.get(name)
                if child is not None:
                    self.evict(child)
                self.appeared.append((node, name, rec))
                continue
            o_ino, o_size, o_mtime, _, _ = unpack_record(old)
            n_ino, n_size, n_mtime, _, _ = unpack_record(rec)
            if o_ino and o_ino != n_ino:
                del files[name]
                self.emit(node, name, int(Mask.DELETE))
                self.appeared.append((node, name, rec))
            elif not self.writes:
                if not (node.dirty and name in node.dirty):
                    files[name] = rec  # a stale record keeps waiting for records.settle
            elif self.from_walk(node, name, old):
                if self.changed(node, name):
                    self.modified.append((node, name, rec))
                else:
                    files[name] = rec
            elif not old or (o_size, o_mtime) != (n_size, n_mtime):
                self.modified.append((node, name, rec))
            else:
                files[name] = rec

    def changed(self, node: Node, name: bytes) -> bool:
        """Whether file ``name`` of ``node``, held by a walk record, may have changed."""
        return changed_since_walk(self.path_of(node) + name, self.placer.walk_clock)

    def from_walk(self, node: Node, name: bytes, rec: int) -> bool:
        """Whether ``rec`` is a walk record that no event has made stale (records.py)."""
        return is_walk_record(rec) and not (node.dirty and name in node.dirty)

    def path_of(self, node: Node) -> bytes:
        """``node``'s path with a trailing slash."""
        return self.tree.path(node) + b"/"

    def diff_dir(self, node: Node, name: bytes, path: bytes, stack: list[Node]) -> None:
        """Compare subdirectory ``name`` of ``node`` with its view node (add_watch decides)."""
        placer, tree = self.placer, self.tree
        cur = node.dirs.get(name)
        if not placer.wants_watch(node, path):
            if cur is not None and cur.wd != UNWATCHED:
                self.evict(cur)
                cur = None
            if cur is None:
                self.seen.add(tree.add_dir(node, name, UNWATCHED))
                self.emit(node, name, _CREATE_DIR)
            return
        try:
            wd = placer.fd.add_watch(path, placer.dir_mask)
        except OSError as exc:
            if exc.errno not in GONE_ERRNOS and (cur is None or cur.wd != UNWATCHED):
                if cur is not None:
                    self.evict(cur)
                new = tree.add_dir(node, name, UNWATCHED)
                self.seen.add(new)
                self.emit(node, name, _CREATE_DIR)
                placer.failed(new, path, exc)
            elif cur is not None:
                self.seen.add(cur)
            return
        other = tree.wds.get(wd)
        if other is not None and other is cur and cur.attached:
            stack.append(cur)
        elif (
            other is not None
            and other.attached
            and other not in self.seen
            and (
                other in self.limbo
                or (
                    other.parent is not None
                    and not is_ancestor(other, node)
                    and not same_inode(tree.path(other), path)
                )
            )
        ):
            self.moved_here(node, name, other, cur)
            stack.append(other)
        elif other is not None and other.attached:
            if cur is None or cur.wd != UNWATCHED:
                if cur is not None:
                    self.evict(cur)
                new = tree.add_dir(node, name, UNWATCHED)
                self.seen.add(new)
                self.emit(node, name, _CREATE_DIR)
                placer.alias(new, path, tree.path(other))
        else:
            if other is not None:
                tree.free(wd)
            if cur is not None:
                self.evict(cur)
            new = tree.add_dir(node, name, wd)
            self.emit(node, name, _CREATE_DIR)
            placer.scan(new, emit=True)
            self.mark_seen(new)
            self.counts["created"] += 1

    def moved_here(self, node: Node, name: bytes, other: Node, cur: Node | None) -> None:
        """``other`` was found at ``node``/``name``: a rename whose events were lost."""
        if cur is not None:
            self.evict(cur)
        if other in self.limbo:
            self.limbo.discard(other)
            self.tree.move(other, node, name)
            self.placer.emit_creates(other)
        else:
            old = self.tree.path(other)
            self.tree.move(other, node, name)
            self.emit(node, name, _MOVED_TO_DIR, old)
        self.counts["moved"] += 1

    def finish(self) -> None:
        """After the walk: file moves, deletions, unmet directories, creations, changes."""
        rest = self.file_moves()
        self.drop_unmet()
        self.file_additions(rest)
        placer = self.placer
        if placer.retry:
            for sub in [s for s in placer.retry if not s.attached]:
                del placer.retry[sub]

    def file_moves(self) -> list[_Entry]:
        """Pair vanished and appeared files as moves; delete the rest of the vanished.

        Returns the appeared files that are no move (to create).
        """
        tree, placer = self.tree, self.placer
        # A rename keeps inode, size and mtime; requiring all three keeps a new file that
        # got a freed inode number (tmpfs, ext4 reuse them) from passing for a rename.
        # Records from the walk without lstat have the inode only: such a pair needs a
        # file whose content is older than the walk's start (a new file has a new mtime).
        # Hard links share an inode (and size and mtime): each key holds a list.
        by_key: dict[tuple[int, int, int], list[_Entry]] = {}
        by_ino: dict[int, list[_Entry]] = {}
        for entry in self.vanished:
            ino, size, mtime, _, _ = unpack_record(entry[2])
            if ino and self.from_walk(*entry):
                by_ino.setdefault(ino, []).append(entry)
            elif ino:
                by_key.setdefault((ino, size, mtime), []).append(entry)
        before_walk = placer.walk_clock[0] if placer.walk_clock else 0
        rest: list[_Entry] = []
        for node, name, rec in self.appeared:
            key = unpack_record(rec)[:3]
            src, walked = _take(by_key, key), False
            if src is None and by_ino and key[2] < before_walk:
                src, walked = _take(by_ino, key[0]), True
            if src is None:
                rest.append((node, name, rec))
                continue
            src_path = tree.path(src[0]) + b"/" + src[1]
            del src[0].files[src[1]]
            node.files[name] = rec
            self.emit(node, name, int(Mask.MOVED_TO), src_path)
            self.counts["moved"] += 1
            if walked and self.changed(node, name):
                # No size to compare, and the rename itself set the ctime: reported as
                # written too (a possible duplicate; cp -p or rsync -t restore mtimes).
                self.modified.append((node, name, rec))
        for entries in [*by_key.values(), *by_ino.values()]:
            for node, name, _ in entries:
                del node.files[name]
                self.emit(node, name, int(Mask.DELETE))
                self.counts["deleted"] += 1
        for node, name, rec in self.vanished:
            if not unpack_record(rec)[0] and name in node.files:
                del node.files[name]
                self.emit(node, name, int(Mask.DELETE))
                self.counts["deleted"] += 1
        return rest

    def file_additions(self, rest: list[_Entry]) -> None:
        """Report the files of ``rest`` created and the modified ones changed."""
        for node, name, rec in rest:
            node.files[name] = rec
            self.emit(node, name, int(Mask.CREATE))
            if rec >> 1 & 3 == KIND_REG:
                self.emit(node, name, int(Mask.CLOSE_WRITE))
            self.counts["created"] += 1
        for node, name, rec in self.modified:
            node.files[name] = rec
            if rec >> 1 & 3 == KIND_REG:
                self.emit(node, name, int(Mask.MODIFY))
                self.emit(node, name, int(Mask.CLOSE_WRITE))
            else:
                self.emit(node, name, int(Mask.ATTRIB))
            self.counts["modified"] += 1

    def drop_unmet(self) -> None:
        """Directories not met in the walk are gone; detached nodes are forgotten."""
        tree = self.tree
        for node in list(tree.wds.values()):
            if not node.attached:
                tree.wds.pop(node.wd, None)
            elif node not in self.seen and node not in self.limbo:
                parent = node.parent
                if parent is None or parent in self.seen:
                    self.placer.drop(node, emit=True, rm=True)
                    self.counts["deleted"] += 1
        for node in self.limbo:
            self.placer.drop(node, emit=False, rm=True)


def resync(
    placer: Placer, recursive_of: dict[bytes, bool], root_gone: Callable[[Node, int], None]
) -> dict[str, int]:
    """Rescan every root against the view and emit the difference (module docstring).

    Args:
        placer: the watcher's Placer (fd, tree, masks, event list ``placer.out``).
        recursive_of: root path -> recursive option (roots listed in ``placer.tree.roots``).
        root_gone: called with a root node that no longer exists at its path.
    Returns:
        counts of repairs: ``{"created": n, "deleted": n, "moved": n, "modified": n}``.
    """
    run = _Resync(placer)
    tree = placer.tree
    for path, root in list(tree.roots.items()):
        try:
            wd = placer.probe(path)
        except OSError:
            wd = None
        if wd != root.wd:  # gone, or another directory at the root's path
            root_gone(root, int(Mask.DELETE_SELF))
            continue
        stack = [root]
        while stack:
            run.walk_dir(stack.pop(), stack)
    run.finish()
    counts = {k: run.counts[k] for k in ("created", "deleted", "moved", "modified")}
    del recursive_of  # the options are read through placer.wants_watch
    return counts


def reconcile_files(placer: Placer, nodes: set[Node]) -> dict[str, int] | None:
    """List the directories ``nodes`` again and make their file records match the disk.

    For renames whose outcome for files was judged by the names as they were when the
    pair was read (``Placer.unsure``). Call only when caught up (nothing read and nothing
    queued). The difference is reported as the overflow resync reports it (synthetic
    DELETE, CREATE + CLOSE_WRITE, MOVED_TO with ``src_path`` for a file found under
    another of these names); a file still at its name is not compared for writes (its
    own events reported them). Directories left the view, unwatched or gone meanwhile are
    skipped.

    Args:
        placer: the watcher's Placer (events go to ``placer.out``).
        nodes: the directories to list (one read_dir each).
    Returns:
        counts of repairs as :func:`resync`'s, or None (nothing changed) when the
        subdirectories of one of them differ from the view's: only a rescan of every root
        can repair that.
    """
    run = _Resync(placer, writes=False)
    tree = placer.tree
    listed: list[tuple[Node, dict[bytes, int], set[bytes]]] = []
    for node in nodes:
        if not node.attached or node.wd == UNWATCHED or tree.wds.get(node.wd) is not node:
            continue
        try:
            dirs, files = read_dir(tree.path(node))
        except OSError:
            continue  # gone (its events follow), or unreadable (reported when it failed)
        real_dirs = set(dirs)
        if real_dirs != node.dirs.keys():
            return None
        listed.append((node, files, real_dirs))
    for node, files, real_dirs in listed:
        run.diff_files(node, files, real_dirs)
    run.file_additions(run.file_moves())
    return {k: run.counts[k] for k in ("created", "deleted", "moved", "modified")}


def _take(index: dict[_K, list[_Entry]], key: _K) -> _Entry | None:
    """Pop one entry filed under ``key`` in ``index`` (dropping the key when it empties)."""
    entries = index.get(key)
    if not entries:
        return None
    entry = entries.pop()
    if not entries:
        del index[key]
    return entry
