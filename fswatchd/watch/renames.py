"""Renames: paired MOVED_FROM/MOVED_TO, moves out of and into the tree, RENAME_EXCHANGE.

The MovePairer has put each paired MOVED_TO right after its MOVED_FROM; here the pair
re-parents a directory node in O(1) (H02, H03) or moves a file record, and is reported as
one MOVED_TO carrying ``src_path``. An unpaired MOVED_FROM is a move out (H04): the
subtree's watches are removed (once each) and its nodes wait detached for IN_IGNORED. An
unpaired MOVED_TO is a move in (H05): watch, then scan. A pair landing on an existing
name displaces it (replace, H21); if the next pair turns out to be the second half of a
renameat2(RENAME_EXCHANGE) (H22) the displaced entry is put back at the other name.
That is judged by what the names hold when the pair is read, which later changes queued
behind it can belie: the directories of such a pair are put in ``Placer.unsure``, to be
listed again once the watcher has caught up (``resync.reconcile_files``).
"""

from __future__ import annotations

import os
from typing import NamedTuple

from ..events import Mask, RawEvent
from .place import Placer
from .scan import GONE_ERRNOS
from .tree import UNWATCHED, Node, unpack_record

__all__ = ["Renames"]

_FROM, _TO = int(Mask.MOVED_FROM), int(Mask.MOVED_TO)
_ISDIR, _CREATE = int(Mask.ISDIR), int(Mask.CREATE)


class _Displaced(NamedTuple):
    """What a paired rename displaced, and the pair itself (for RENAME_EXCHANGE)."""

    parent: Node  # where it was: the pair's target
    name: bytes
    thing: Node | int  # the directory node or the file record
    src: Node  # the pair's source
    src_name: bytes
    #: A file displaced by a directory or the reverse: only RENAME_EXCHANGE does that.
    kinds_differ: bool = False


class Renames:
    """Rename handling for the Engine (shares its Placer and tree).

    Args:
        placer: the engine's Placer (fd, tree, masks, event list).
        recursive_of: root path -> recursive option.
    """

    def __init__(self, placer: Placer, recursive_of: dict[bytes, bool]) -> None:
        self.placer = placer
        self.tree = placer.tree
        self.recursive_of = recursive_of
        #: The last node or file record displaced by a paired rename; the next pair may
        #: be the second half of a RENAME_EXCHANGE.
        self.displaced: _Displaced | None = None

    def _emit_at(
        self, node: Node, name: bytes, mask: int, cookie: int, src: bytes | None = None
    ) -> None:
        """Report a kernel rename event (with its ``cookie``) for entry ``name`` of ``node``."""
        path = self.tree.path(node)
        self.placer.emit(path + b"/" + name, mask, node._root, src, syn=False, cookie=cookie)

    def pair(self, src_ev: RawEvent, dst_ev: RawEvent) -> None:
        """A paired rename: re-parent in O(1) and report one MOVED_TO with src_path.

        The MOVED_TO carries the kernel's cookie (also when the pair has to be reported as
        a move out plus a move in: then both halves carry it).
        """
        wds = self.tree.wds
        src, dst = wds.get(src_ev.wd), wds.get(dst_ev.wd)
        if src is None or not src.attached:
            if dst is not None and dst.attached:
                self.move_in(dst_ev)
            return
        if dst is None or not dst.attached:
            self.move_out(src_ev)
            return
        src_path = self.tree.path(src) + b"/" + src_ev.name
        if src_ev.mask & _ISDIR:
            self._move_dir(src, src_ev.name, dst, dst_ev.name, src_path, cookie=src_ev.cookie)
        else:
            self._move_file(src, src_ev.name, dst, dst_ev.name, src_path, cookie=src_ev.cookie)

    def _move_dir(
        self, src: Node, sname: bytes, dst: Node, dname: bytes, src_path: bytes, *, cookie: int
    ) -> None:
        """Re-parent a directory node; handles replace, exchange and option changes."""
        tree, placer = self.tree, self.placer
        mask = _TO | _ISDIR
        exchanged = self._exchanged(src, sname, dst, dname)
        if isinstance(exchanged, Node):
            tree.reattach(exchanged, dst, dname)
            placer.moved.add(exchanged)
            placer.emit_creates(exchanged)
            return
        child = src.dirs.get(sname)
        dst_path = tree.path(dst) + b"/" + dname
        src_root, dst_root = tree.root_of(src), tree.root_of(dst)
        # A lost node (not watched yet: its path went stale) counts as watched: it is
        # re-tried by its path after the batch, which this move keeps right.
        watched = child is not None and (child.wd != UNWATCHED or child in placer.lost)
        if child is None or watched != placer.wants_watch(dst, dst_path):
            # Unknown, or watched on one side only (prune hook, non-recursive root): a
            # move out plus a move in, so the view below it is rebuilt by a scan.
            if child is not None:
                placer.emit(src_path, _FROM | _ISDIR, src_root, syn=False, cookie=cookie)
                placer.drop(child, emit=False, rm=True)
            held = dst.dirs.get(dname)
            placer.emit(dst_path, mask, dst_root, syn=False, cookie=cookie)
            if placer.add_child(dst, dname, emit=True) is held and held is not None:
                # Already in the view at that name (a CREATE read late watched it there):
                # not scanned again, yet the MOVED_TO, with no src_path, replaced it for a
                # consumer; its content is reported again.
                placer.emit_creates(held)
            return
        # A file at the target can only be the other half of a RENAME_EXCHANGE (rename(2)
        # of a directory onto a file fails with ENOTDIR).
        old_file = dst.files.get(dname)
        displaced = tree.move(child, dst, dname)
        placer.moved.add(child)
        placer.vacated.add((src, sname))
        if displaced is not None:
            placer.drop(displaced, emit=False)
            placer.moved.add(displaced)
            self.displaced = _Displaced(dst, dname, displaced, src, sname)
        elif old_file is not None:
            self.displaced = _Displaced(dst, dname, old_file, src, sname, kinds_differ=True)
        placer.emit(dst_path, mask, dst_root, src_path, syn=False, cookie=cookie)

    def _move_file(
        self, src: Node, sname: bytes, dst: Node, dname: bytes, src_path: bytes, *, cookie: int
    ) -> None:
        """Move a file record; the record (inode, size, mtime) travels with the name."""
        exchanged = self._exchanged(src, sname, dst, dname)
        if isinstance(exchanged, int) and dname not in dst.dirs:
            # (A directory in the view at the target: no exchange of two files, whatever
            # the names say now; a rename of a file onto it, below.)
            dst.files[dname] = exchanged
            path = self.tree.path(dst) + b"/" + dname
            self.placer.emit(path, _CREATE, dst._root, syn=True)
            if not exchanged >> 1 & 3:
                self.placer.emit(path, int(Mask.CLOSE_WRITE), dst._root, syn=True)
            return
        rec = src.files.pop(sname, None)
        src_known: bytes | None = src_path
        if rec is None:
            # No such file in the view: an exchange misjudged earlier (see _exchanged).
            # Reported as a move in, so a consumer keeps whatever the view has at the
            # source name (a directory, say); both directories are listed again.
            rec, src_known = 0, None
            self.placer.unsure.add(src)
            self.placer.unsure.add(dst)
        elif src.dirty:
            src.dirty.discard(sname)
        old: Node | int | None = dst.files.get(dname)
        child = dst.dirs.get(dname)
        if child is not None:
            # Likewise a directory at the target (rename(2) of a file onto one: EISDIR):
            # it is kept for the exchange's second half, which puts it back.
            self.placer.drop(child, emit=False)
            self.placer.moved.add(child)
            old = child
        dst.files[dname] = rec
        if not rec & 1:
            self.placer.touch(dst, dname)
        if old is not None:
            self.displaced = _Displaced(dst, dname, old, src, sname, child is not None)
        self._emit_at(dst, dname, _TO, cookie, src_known)

    def _exchanged(self, src: Node, sname: bytes, dst: Node, dname: bytes) -> Node | int | None:
        """If this pair is the second half of a RENAME_EXCHANGE, the thing to put at dst.

        rename(2) cannot tell us; ask the kernel: the pair is an exchange when it is the
        previous pair reversed (its target is this source and its source this target)
        and the entry that pair displaced is what dst/dname holds now.
        """
        last = self.displaced
        if last is None or last.parent is not src or last.name != sname:
            return None
        self.displaced = None
        if last.src is not dst or last.src_name != dname:
            return None  # a rename onward (save via tmp, then mv f g): no exchange
        # From here on the answer rests on the names as they are now, which renames and
        # removals queued behind this pair may have changed since: the two directories
        # are listed again once the watcher has caught up (Engine.check_moves).
        self.placer.unsure.add(src)
        self.placer.unsure.add(dst)
        thing = last.thing
        if last.kinds_differ:
            return thing  # the previous pair reversed, and it swapped a file and a directory
        path = self.tree.path(dst) + b"/" + dname
        if isinstance(thing, Node):
            if thing.wd == UNWATCHED or self.tree.wds.get(thing.wd) is not thing:
                return None
            try:
                wd = self.placer.probe(path)
            except OSError as exc:
                # Nothing at the path by now (removed later, ``rm -rf`` after a switch):
                # the names, reversed, and the displaced directory still alive (no
                # IN_IGNORED for it yet, as a replaced directory would have) tell it.
                return thing if exc.errno in GONE_ERRNOS else None
            return thing if wd == thing.wd else None
        ino = unpack_record(thing)[0]
        if not ino:
            # A file only seen by its CREATE (no lstat yet): after an exchange both names
            # are there; after "mv a b; mv b a" the source of this pair is gone.
            return thing if os.path.lexists(self.tree.path(src) + b"/" + sname) else None
        try:
            return thing if os.lstat(path).st_ino == ino else None
        except OSError:
            return None

    def move_out(self, ev: RawEvent) -> None:
        """An unpaired MOVED_FROM: the entry left the tree (H04); its watches are removed."""
        node = self.tree.wds.get(ev.wd)
        if node is None or not node.attached:
            return
        name = ev.name
        if ev.mask & _ISDIR:
            child = node.dirs.get(name)
            self._emit_at(node, name, ev.mask, ev.cookie)
            if child is not None:
                self.placer.drop(child, emit=False, rm=True)
        else:
            node.files.pop(name, None)
            if node.dirty:
                node.dirty.discard(name)
            self._emit_at(node, name, ev.mask, ev.cookie)

    def move_in(self, ev: RawEvent) -> None:
        """An unpaired MOVED_TO: something arrived from outside (H05): watch and scan."""
        node = self.tree.wds.get(ev.wd)
        if node is None or not node.attached:
            return
        self._emit_at(node, ev.name, ev.mask, ev.cookie)
        if ev.mask & _ISDIR:
            self.placer.add_child(node, ev.name, emit=True)
        else:
            node.files[ev.name] = 0
            self.placer.touch(node, ev.name)
