"""WatchTree: the watcher's view of the watched trees, as directory nodes keyed by wd.

A path is never stored per watch: it is derived from the chain ``node -> parent -> ...
-> root`` at the moment an event is processed, so renaming a directory is one O(1)
re-parent and every later event below it carries the new path (inotify(7) watches are
inode-based: the wds of a renamed subtree stay valid). Each node caches its absolute path
together with the tree's generation; any re-parent bumps the generation, which invalidates
all cached paths lazily (recomputed on demand, parents first, so amortised O(1) per node).

Nodes are *attached* (part of the view) or *detached*: deleted, moved out, replaced or
unmounted, but their wd is still known to the kernel until its IN_IGNORED arrives. Events
for a detached node's wd are dropped; its IN_IGNORED frees it (hazards H08, H20, H21).

Files are not nodes: each directory node keeps ``files: dict[name, record]`` where the
record is one packed ``int`` (see :func:`pack_record`), about 40 bytes, so a view of
100,000 files costs ~13 MB. Pure: no I/O here.
"""

from __future__ import annotations

import types
from collections.abc import Iterable, Iterator
from typing import cast

__all__ = [
    "KIND_OTHER",
    "KIND_REG",
    "KIND_SYMLINK",
    "LISTING_REC",
    "UNWATCHED",
    "Node",
    "WatchTree",
    "is_ancestor",
    "is_walk_record",
    "listing_items",
    "pack_listing",
    "pack_record",
    "unpack_listing",
    "unpack_record",
    "walk_record",
]

#: ``Node.wd`` of a directory in the view that has no watch (pruned, EACCES, ENOSPC,
#: below a non-recursive root, or a second path to an already watched inode).
UNWATCHED = -1

#: File kinds kept in a record (2 bits): regular file, symbolic link, anything else.
KIND_REG, KIND_SYMLINK, KIND_OTHER = 0, 1, 2

_U64 = (1 << 64) - 1
#: Every pack_record record is at least this; walk records are below it.
_WALK_TOP = 1 << 67

#: ``Node.dirs`` of a directory without subdirectories: one shared read-only mapping, as
#: most directories of a large tree are leaves (an empty dict each would be 64 bytes).
#: Writes go through :meth:`WatchTree.own_dirs`; a stray write raises, never corrupts.
_NO_DIRS = cast("dict[bytes, Node]", types.MappingProxyType({}))


def pack_record(ino: int, size: int, mtime_ns: int, kind: int) -> int:
    """Pack a file's lstat facts into one int (exact, variable length, ~100-120 bits).

    Layout, low bits first: bit 0 *clean* (1: the facts are current), bits 1-2 kind,
    bits 3-66 ``mtime_ns`` as unsigned 64-bit, bits 67-73 the bit length L of ``ino``,
    then ``ino`` (L bits), then ``size``. ``0`` means "nothing known" (a file only seen
    in a CREATE event). A *dirty* record (an event arrived since the lstat) is the clean
    one with bit 0 cleared: the inode is still known, size and mtime are not. Every such
    record is at least ``2**67`` (L is at least 1); smaller ones are *walk records*
    (:func:`walk_record`).

    Args:
        ino: st_ino; size: st_size (bytes); mtime_ns: st_mtime_ns; kind: KIND_*.
    Returns:
        the record (int > 0).
    """
    ilen = ino.bit_length() or 1  # L >= 1 keeps every record >= 2**67 (walk records: below)
    return 1 | kind << 1 | (mtime_ns & _U64) << 3 | ilen << 67 | ino << 74 | size << (74 + ilen)


def walk_record(ino: int, kind: int) -> int:
    """The record of a file seen by the initial walk: readdir's inode and type, no lstat.

    Layout: bit 0 clear (not clean: no size, no mtime), bits 1-2 kind, then ``ino`` (>= 1).
    Below ``2**67`` for any 64-bit inode, so never mistaken for a :func:`pack_record`
    record, and a small int (32 bytes instead of 48: 300,000 files save ~5 MB). Whether
    such a file changed is told by its ctime (records.py).
    """
    return kind << 1 | ino << 3


def is_walk_record(rec: int) -> bool:
    """Whether ``rec`` is a :func:`walk_record` (``0``, "nothing known", is not)."""
    return 0 < rec < _WALK_TOP


def unpack_record(rec: int) -> tuple[int, int, int, int, bool]:
    """Inverse of :func:`pack_record` and :func:`walk_record`: ``(ino, size, mtime_ns, kind,
    clean)``.

    ``ino`` is 0 for the unknown record ``0``; ``mtime_ns`` is signed again; size and mtime
    are 0 for a walk record.
    """
    if rec < _WALK_TOP:
        return rec >> 3, 0, 0, rec >> 1 & 3, False
    mtime = rec >> 3 & _U64
    if mtime >> 63:
        mtime -= 1 << 64
    ilen = rec >> 67 & 0x7F
    ino = rec >> 74 & ((1 << ilen) - 1)
    return ino, rec >> (74 + ilen), mtime, rec >> 1 & 3, bool(rec & 1)


#: Bytes of a walk record in a listing (a 64-bit inode shifted by 3: 67 bits).
LISTING_REC = 9


def pack_listing(items: Iterable[tuple[bytes, int]]) -> bytes:
    """A directory's files as the walk found them, in one bytes object.

    Each entry is the name, a NUL (no file name holds one) and the walk record
    (:func:`walk_record`) in 9 little-endian bytes: for three short names ~80 bytes,
    where a dict of the same (its table, name and int objects) is ~460. Most
    directories of a large tree never see an event; the first one unpacks the listing
    into a dict (``Node.files``).

    Args:
        items: (name, walk record) pairs.
    Returns:
        the listing.
    Raises:
        OverflowError: a record that is not a walk record (>= 2**72).
    """
    return b"".join(name + b"\0" + rec.to_bytes(LISTING_REC, "little") for name, rec in items)


def listing_items(listing: bytes) -> Iterator[tuple[bytes, int]]:
    """The (name, record) pairs of a :func:`pack_listing` listing, in order."""
    pos, end, find = 0, len(listing), listing.find
    while pos < end:
        nul = find(b"\0", pos)
        yield listing[pos:nul], int.from_bytes(listing[nul + 1 : nul + 10], "little")
        pos = nul + 1 + LISTING_REC


def unpack_listing(listing: bytes) -> dict[bytes, int]:
    """A :func:`pack_listing` listing as the dict ``Node.files`` holds."""
    return dict(listing_items(listing))


class Node:
    """One directory of the view.

    Attributes:
        wd: its watch descriptor, or ``UNWATCHED``.
        parent: the parent node; ``None`` for a root node and for detached tops.
        name: the entry name in ``parent`` (bytes); for a root node, its absolute path.
        dirs: child directories, name -> Node (watched or not).
        files: every other child entry, name -> packed record (a property: the walk's
            listing is unpacked into this dict on first use, see :func:`pack_listing`).
        attached: False once deleted / moved out / replaced (waiting for IN_IGNORED).
        dirty: names of files whose record is not clean (None when there are none).
    """

    __slots__ = (
        "_files",
        "_gen",
        "_path",
        "_root",
        "attached",
        "dirs",
        "dirty",
        "name",
        "parent",
        "wd",
    )

    def __init__(self, wd: int, parent: Node | None, name: bytes) -> None:
        self.wd = wd
        self.parent = parent
        self.name = name
        self.dirs: dict[bytes, Node] = _NO_DIRS
        self._files: dict[bytes, int] | bytes = b""  # an empty listing: no dict yet
        self.attached = True
        self.dirty: set[bytes] | None = None
        self._gen = -1
        self._path = b""
        self._root: bytes | None = None

    @property
    def files(self) -> dict[bytes, int]:
        """Name -> record of every non-directory entry (the listing unpacked if need be)."""
        files = self._files
        if isinstance(files, bytes):
            files = self._files = unpack_listing(files)
        return files

    @files.setter
    def files(self, files: dict[bytes, int]) -> None:
        self._files = files

    def set_listing(self, listing: bytes) -> None:
        """Keep the walk's ``listing`` (:func:`pack_listing`) as this directory's files."""
        self._files = listing

    @property
    def listed(self) -> bool:
        """Whether the files are still the walk's packed listing (not unpacked yet)."""
        return isinstance(self._files, bytes)

    def file_count(self) -> int:
        """Number of non-directory entries (a listing is counted, not unpacked)."""
        files = self._files
        if not isinstance(files, bytes):
            return len(files)
        count, pos, end, find = 0, 0, len(files), files.find
        while pos < end:
            pos = find(b"\0", pos) + 1 + LISTING_REC
            count += 1
        return count

    def file_items(self) -> Iterator[tuple[bytes, int]]:
        """(name, record) of every file, without unpacking a listing (read-only uses)."""
        files = self._files
        if isinstance(files, bytes):
            return listing_items(files)
        return iter(files.items())

    def __repr__(self) -> str:
        state = "attached" if self.attached else "detached"
        return f"<Node wd={self.wd} name={self.name!r} {state}>"


class WatchTree:
    """All roots' nodes in one tree, plus the wd -> node map (one inotify fd, H06).

    Pure bookkeeping: callers do the add_watch/rm_watch calls and report the wds here.
    """

    __slots__ = ("gen", "roots", "wds")

    def __init__(self) -> None:
        self.wds: dict[int, Node] = {}
        self.roots: dict[bytes, Node] = {}
        #: Bumped on every re-parent; cached paths from older generations are stale.
        self.gen = 0

    # -- structure -------------------------------------------------------------------

    def add_root(self, path: bytes, wd: int) -> Node:
        """Create the node of root ``path`` (absolute bytes) with watch ``wd``."""
        node = Node(wd, None, path)
        self.roots[path] = node
        if wd != UNWATCHED:
            self.wds[wd] = node
        return node

    def add_dir(self, parent: Node, name: bytes, wd: int) -> Node:
        """Create (or replace) child directory ``name`` of ``parent``; returns the new node.

        A node previously at that name is detached first (returned nowhere: callers that
        care look it up before).
        """
        old = parent.dirs.get(name)
        if old is not None:
            self.detach(old)
        parent.files.pop(name, None)
        node = Node(wd, parent, name)
        self.own_dirs(parent)[name] = node
        if wd != UNWATCHED:
            self.wds[wd] = node
        return node

    @staticmethod
    def own_dirs(node: Node) -> dict[bytes, Node]:
        """``node.dirs``, made a dict of its own first if it is the shared empty one."""
        if node.dirs is _NO_DIRS:
            node.dirs = {}
        return node.dirs

    def set_wd(self, node: Node, wd: int) -> None:
        """Give ``node`` watch ``wd`` (e.g. after a retry succeeded)."""
        if node.wd != UNWATCHED and self.wds.get(node.wd) is node:
            del self.wds[node.wd]
        node.wd = wd
        if wd != UNWATCHED:
            self.wds[wd] = node

    def move(self, node: Node, parent: Node, name: bytes) -> Node | None:
        """Re-parent ``node`` to ``parent``/``name`` in O(1); returns the displaced node.

        A directory node already at the target name is unlinked from the view and
        returned (the caller decides: replaced -> detach, or exchange -> move it too).
        A file record at the target name is dropped.
        """
        old_parent = node.parent
        if old_parent is not None and old_parent.dirs.get(node.name) is node:
            del old_parent.dirs[node.name]
        displaced = self.own_dirs(parent).pop(name, None)
        if displaced is node:
            displaced = None
        if displaced is not None:
            displaced.parent = None
        parent.files.pop(name, None)
        node.parent = parent
        node.name = name
        parent.dirs[name] = node
        self.gen += 1
        return displaced

    def unlink(self, node: Node) -> None:
        """Remove ``node`` from its parent's ``dirs`` (it stays in ``wds``)."""
        parent = node.parent
        if parent is not None and parent.dirs.get(node.name) is node:
            del parent.dirs[node.name]
            self.gen += 1

    def detach(self, node: Node) -> list[int]:
        """Unlink ``node`` and mark its whole subtree detached; return the subtree's wds.

        The nodes stay in ``wds`` until :meth:`free` (their IN_IGNORED): late events for
        them are then recognised and dropped (H20). Cost O(subtree size).
        """
        self.unlink(node)
        wds: list[int] = []
        for sub in self.walk(node):
            sub.attached = False
            if sub.wd != UNWATCHED:
                wds.append(sub.wd)
        return wds

    def reattach(self, node: Node, parent: Node, name: bytes) -> Node | None:
        """Put a detached subtree back at ``parent``/``name`` (RENAME_EXCHANGE, H22).

        Returns the node displaced from the target name, as :meth:`move` does.
        """
        for sub in self.walk(node):
            sub.attached = True
        return self.move(node, parent, name)

    def free(self, wd: int) -> Node | None:
        """Forget ``wd`` (IN_IGNORED arrived or rm_watch done); returns its node, if any."""
        return self.wds.pop(wd, None)

    # -- queries ---------------------------------------------------------------------

    def path(self, node: Node) -> bytes:
        """The absolute path of ``node`` (bytes), from the cache when it is current."""
        gen = self.gen
        if node._gen == gen:
            return node._path
        # Iterative (trees can be deeper than the recursion limit): climb to the first
        # node whose cache is current, then fill the caches on the way back down.
        chain = [node]
        cur = node.parent
        while cur is not None and cur._gen != gen:
            chain.append(cur)
            cur = cur.parent
        for sub in reversed(chain):
            parent = sub.parent
            if parent is None:
                if self.roots.get(sub.name) is sub:  # a root: its name is its path
                    sub._path = sub._root = sub.name
                else:
                    sub._path, sub._root = b"/<detached>/" + sub.name, None
            else:
                sub._path, sub._root = parent._path + b"/" + sub.name, parent._root
            sub._gen = gen
        return node._path

    def root_of(self, node: Node) -> bytes | None:
        """The configured root path ``node`` lies under (after :meth:`path` refreshed it)."""
        if node._gen != self.gen:
            self.path(node)
        return node._root

    def walk(self, node: Node) -> Iterator[Node]:
        """``node`` and every directory node below it, parents before children."""
        stack = [node]
        while stack:
            cur = stack.pop()
            yield cur
            stack.extend(cur.dirs.values())

    def count_files(self) -> int:
        """Number of non-directory entries in the attached view."""
        return sum(n.file_count() for r in self.roots.values() for n in self.walk(r))

    def snapshot(self) -> dict[bytes, bool]:
        """Every entry below the roots: absolute path -> is_dir (roots themselves excluded)."""
        out: dict[bytes, bool] = {}
        for root in self.roots.values():
            for node in self.walk(root):
                base = self.path(node) + b"/"
                for name in node.dirs:
                    out[base + name] = True
                for name, _ in node.file_items():
                    out[base + name] = False
        return out


def is_ancestor(node: Node, of: Node) -> bool:
    """Whether ``node`` is ``of`` or one of its ancestors (re-parenting would loop)."""
    cur: Node | None = of
    while cur is not None:
        if cur is node:
            return True
        cur = cur.parent
    return False
