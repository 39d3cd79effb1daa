"""Engine: raw inotify events in stream order -> FsEvents, keeping the WatchTree right.

Synchronous and clock-free (time is passed in), so it can be driven by scripted RawEvent
sequences (:meth:`Engine.feed`); :class:`~fswatchd.watch.recursive.RecursiveWatcher` wraps
it with the asyncio reader. One event at a time, strictly in stream order (H03): each
event's path is derived from the node tree at that position. Every FsEvent is appended at
the moment its change is applied to the view, so a consumer replaying the stream holds
the same view as :meth:`WatchTree.snapshot`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from .._inotify.fd import InotifyFd
from ..events import FsEvent, Mask, RawEvent
from ..message_ids import MESSAGE_ID_OVERFLOW_REPAIRED
from .moves import MovePairer
from .place import DIR_EVENTS, WATCH_FLAGS, Placer
from .records import settle
from .renames import Renames
from .resync import reconcile_files, resync
from .retry import misplaced, retry_failed, retry_lost
from .rootset import RootSet
from .tree import UNWATCHED, Node, WatchTree, is_ancestor

__all__ = ["Engine"]

log = logging.getLogger(__name__)

_FROM, _TO = int(Mask.MOVED_FROM), int(Mask.MOVED_TO)
_ISDIR, _CREATE, _DELETE = int(Mask.ISDIR), int(Mask.CREATE), int(Mask.DELETE)
_OVERFLOW, _IGNORED = int(Mask.Q_OVERFLOW), int(Mask.IGNORED)
_DELETE_SELF, _MOVE_SELF, _UNMOUNT = int(Mask.DELETE_SELF), int(Mask.MOVE_SELF), int(Mask.UNMOUNT)
_ATTRIB = int(Mask.ATTRIB)
#: File events after which the file's record (lstat facts) is no longer current.
_STALE = int(Mask.CREATE | Mask.MODIFY | Mask.CLOSE_WRITE | Mask.ATTRIB)
_SELF_END = _DELETE_SELF | _MOVE_SELF | _UNMOUNT | _IGNORED
_MOVE = _FROM | _TO
#: Bits of events that :meth:`Engine._handle` applies (with every event without a name):
#: a directory's, a rename's, the overflow. The rest are files' and are handled inline.
_HANDLED = _MOVE | _ISDIR | _OVERFLOW | _SELF_END
# Reads of directories (readdir by anyone, the watcher's own scans included) are never
# reported: they would echo every scan back into the stream.
_DIR_READS = int(Mask.OPEN | Mask.ACCESS | Mask.CLOSE_NOWRITE)
_new_event = tuple.__new__


def _masks(mask: int) -> tuple[int, int]:
    """(what to report, what to ask the kernel for) for a user mask."""
    emit_mask = (int(mask) & ~int(Mask.ISDIR)) | _OVERFLOW | int(Mask.ERROR)
    dir_mask = WATCH_FLAGS | DIR_EVENTS | (int(mask) & int(Mask.ALL))
    return emit_mask, dir_mask


class Engine:
    """The watcher's core: a WatchTree, a MovePairer and a Placer on one inotify fd.

    Args:
        fd: the inotify instance (owned by the caller).
        mask: the user's event mask (``Mask`` bits); Q_OVERFLOW and ERROR always pass.
        move_timeout: seconds an unpaired MOVED_FROM waits (see MovePairer).
        should_watch: prune hook (absolute directory path -> watch it?), or None.
        drain: returns the raw events still queued in the fd right now (a barrier); what
            it returns after an overflow is discarded, the rescan covers it.
    """

    def __init__(
        self,
        fd: InotifyFd,
        mask: int,
        *,
        move_timeout: float,
        should_watch: Callable[[bytes], bool] | None,
        drain: Callable[[], list[RawEvent]],
    ) -> None:
        self.tree = WatchTree()
        self.recursive_of: dict[bytes, bool] = {}
        emit_mask, dir_mask = _masks(mask)
        self.placer = Placer(
            fd,
            self.tree,
            dir_mask=dir_mask,
            emit_mask=emit_mask,
            should_watch=should_watch,
            recursive_of=self.recursive_of,
        )
        self.pairer = MovePairer(move_timeout)
        self.roots = RootSet(self.placer, self.recursive_of)
        self.anchors = self.roots.anchors
        self.drain = drain
        self.renames = Renames(self.placer, self.recursive_of)

    def set_mask(self, mask: int) -> int:
        """Report ``mask`` from now on; re-add every watch whose kernel mask must change.

        inotify_add_watch(2) on an already-watched inode replaces its mask and returns the
        same wd, so the tree is unchanged. Returns the number of watches updated (0 when
        only the reported set changed). Directories that vanished meanwhile are skipped:
        their DELETE is already queued.
        """
        emit_mask, dir_mask = _masks(mask)
        self.placer.emit_mask = emit_mask
        if dir_mask == self.placer.dir_mask:
            return 0
        self.placer.dir_mask = dir_mask
        updated = 0
        add_watch = self.placer.fd.add_watch
        # Paths are joined on the way down, not taken from (and left in) the path cache.
        stack = [(node, node.name) for node in self.tree.roots.values()]
        while stack:
            node, path = stack.pop()
            stack += [(child, path + b"/" + name) for name, child in node.dirs.items()]
            if node.wd == UNWATCHED or not node.attached:
                continue
            try:
                add_watch(path, dir_mask)
            except OSError:
                continue
            updated += 1
        return updated

    def take_out(self) -> list[FsEvent]:
        """Pop the events appended outside :meth:`feed` (start errors, reloads, roots)."""
        out, self.placer.out = self.placer.out, []
        return out

    # -- stream ----------------------------------------------------------------------

    @property
    def deadline(self) -> float | None:
        """Clock time when held move halves expire, or None."""
        return self.pairer.deadline

    def feed(self, events: list[RawEvent], now: float) -> list[FsEvent]:
        """Process one read batch (may be empty: expiry check) at clock time ``now``.

        Returns the FsEvents, in stream order, including synthetic ones from scans.
        """
        if self.pairer.held:
            self._process(self.pairer.push(events, now), now, paired=True)
        else:
            # Straight from the kernel: the pairer is only consulted at the first
            # MOVED_FROM whose MOVED_TO is not the next event (see _process).
            self._process(events, now, paired=False)
        if self.placer.lost:
            self.retry_lost(settled=False)
        out, self.placer.out = self.placer.out, []
        return out

    def _process(self, events: list[RawEvent], now: float, *, paired: bool) -> None:
        """Apply ``events`` to the view at clock time ``now``, emitting.

        ``paired``: the events come from MovePairer.push, so a MOVED_FROM not followed by
        its MOVED_TO is a move out. Otherwise they come straight from the kernel, and at
        such a MOVED_FROM the rest of the batch goes through the pairer, which looks
        further ahead and holds what must wait (the events before it are released by the
        pairer unchanged, so they need not go through it).

        The events of files (CREATE, OPEN, MODIFY, CLOSE_WRITE, ...: nearly all of a busy
        stream) are handled inline; directories, moves and the watches' own events go to
        :meth:`_handle`, after which the inline state is looked up again (a handler may
        re-parent, detach or free nodes). One long function on purpose: a call per event
        would cost more than the work done for most events.
        """
        tree = self.tree
        wds = tree.wds
        out = self.placer.out
        emit_mask = self.placer.emit_mask
        anchor_wds = self.anchors.wds
        applied: RawEvent | None = None  # the MOVED_TO applied with the MOVED_FROM before it
        # The directory of the previous file event (wds are >= 1: 0 means none) and the
        # file it was about: a written file's events (CREATE, OPEN, MODIFY, CLOSE_WRITE)
        # come one after another and share the node lookup, the path and the record's
        # bookkeeping, which only the event bits in ``pending`` can still change.
        cur_wd = 0
        node: Node | None = None
        prefix = b""
        root: bytes | None = None
        last = b""
        path = b""
        pending = 0
        for i, ev in enumerate(events, 1):  # i: the index of the next event
            wd, m, cookie, name = ev
            if m & _HANDLED or not name:
                cur_wd = 0  # a handler may re-parent, detach or free nodes
                if ev is applied:
                    continue
                # Anchors and guards look only at these: directories' own events and new
                # subdirectories.
                if wd in anchor_wds or wd in self.roots.guards:
                    self._note_roots(ev)
                if not m & _FROM:
                    if not self._handle(ev):
                        return  # overflow: the rest of the batch is void
                    continue
                nxt = events[i] if i < len(events) else None
                if nxt is not None and nxt.mask & _TO and nxt.cookie == cookie:
                    applied = nxt
                    self.renames.pair(ev, nxt)
                elif paired:
                    self.renames.move_out(ev)
                else:
                    self._process(self.pairer.push(events[i - 1 :], now), now, paired=True)
                    return
                continue
            if wd != cur_wd:
                node = wds.get(wd)
                if node is None or not node.attached:
                    continue  # a wd already forgotten, or a detached node's late event
                cur_wd = wd
                prefix = tree.path(node) + b"/"
                root = tree.root_of(node)
                last = b""
            if name != last:
                last = name
                path = prefix + name
                pending = _DELETE | _STALE
            if m & pending:
                assert node is not None
                pending = self._note_file(node, name, m)
            if m & emit_mask:
                # (path, mask, is_dir, src_path, synthetic, cookie, root, errno, message)
                out.append(_new_event(FsEvent, (path, m, False, None, False, 0, root, 0, None)))

    def _note_file(self, node: Node, name: bytes, m: int) -> int:
        """Keep file ``name``'s record in ``node`` right after event ``m``.

        Returns the event bits that can change the record further: once it is marked stale
        (unknown after CREATE, refreshed when idle as Placer.touch does), only a DELETE or
        a new CREATE can.
        """
        files = node.files
        if m & _DELETE:
            files.pop(name, None)
            if node.dirty:
                node.dirty.discard(name)
            return _DELETE | _STALE
        if m & _CREATE:
            files[name] = 0
        else:
            rec = files.get(name)
            if rec is None:
                # An event for a file the view lacks: a rename read late was misjudged
                # (renames.Renames._exchanged). The directory is listed again once caught
                # up, and the file reported created then.
                self.placer.unsure.add(node)
                return _DELETE | _CREATE
            files[name] = rec & ~1
        if node.dirty is None:  # not in the stale set yet (settle() resets both)
            node.dirty = {name}
            self.placer.dirty.add(node)
        else:
            node.dirty.add(name)
        return _DELETE | _CREATE

    def _note_roots(self, ev: RawEvent) -> None:
        """An event on an anchor (a missing root's ancestor) or a guard (a root's)."""
        if ev.wd in self.anchors.wds:
            self.anchors.note(ev)
        if ev.wd in self.roots.guards:
            self.roots.guard_event(ev.wd, ev.mask)

    def _handle(self, ev: RawEvent) -> bool:
        """Apply one event that is not a file's (a directory's, MOVED_TO, a watch's own).

        Returns False after IN_Q_OVERFLOW: the rest of the batch is then void (the rescan
        covers it).
        """
        wd, m, _cookie, name = ev
        if m & _TO:
            self.renames.move_in(ev)
            return True
        node = self.tree.wds.get(wd)
        if node is None:
            if m & _OVERFLOW:
                self._on_overflow()
                return False
            return True
        if not node.attached:
            if m & _IGNORED:
                self.tree.free(wd)
        elif not name:
            self._on_self(node, ev)
        elif m & _CREATE:
            self._on_create_dir(node, name, m)
        else:
            if m & _DELETE:
                self._on_delete_dir(node, name)
            elif m & _ATTRIB and self.placer.retry:
                self._retry(node, name)
            if not m & _DIR_READS:
                self._emit_at(node, name, m)
        return True

    def _emit_at(self, node: Node, name: bytes, mask: int, src: bytes | None = None) -> None:
        """Report a kernel event for entry ``name`` of ``node``."""
        path = self.tree.path(node)
        self.placer.emit(path + b"/" + name, mask, self.tree.root_of(node), src, syn=False)

    def _on_create_dir(self, node: Node, name: bytes, m: int) -> None:
        """CREATE|ISDIR: reported, then the directory is watched and scanned."""
        self._emit_at(node, name, m)
        child = node.dirs.get(name)
        if child is None or not child.attached:
            self.placer.add_child(node, name, emit=True)

    def _on_delete_dir(self, node: Node, name: bytes) -> None:
        """DELETE|ISDIR: forget the directory (its node waits for its IN_IGNORED)."""
        child = node.dirs.get(name)
        if child is not None:
            self.placer.drop(child, emit=False)

    def _on_self(self, node: Node, ev: RawEvent) -> None:
        """Events on a watched directory itself: deletion, move, unmount, IN_IGNORED."""
        m = ev.mask
        is_root = node.parent is None
        if m & _SELF_END:
            if m & _IGNORED:
                self.tree.free(ev.wd)
                node.wd = UNWATCHED
                if is_root:
                    self.roots.gone(node, _DELETE_SELF)
            elif is_root:
                self.roots.gone(node, m & _SELF_END)
                if m & _UNMOUNT:
                    self.roots.uncovered(node.name)
            elif m & _UNMOUNT:
                self._on_unmount(node)
            elif m & _DELETE_SELF:
                # Linux queues DELETE_SELF before the parent's DELETE|ISDIR, which reports it.
                self.placer.drop(node, emit=False)
        elif is_root and not m & _DIR_READS:
            self.placer.emit(node.name, m, node.name, syn=False)

    def _on_unmount(self, node: Node) -> None:
        """The file system under ``node`` was unmounted (H18): drop it, re-watch the path."""
        parent, name = node.parent, node.name
        self.placer.emit_deletes(node, include_top=False)
        self.tree.detach(node)
        if parent is not None:
            self.placer.add_child(parent, name, emit=True)

    def _retry(self, node: Node, name: bytes) -> None:
        """IN_ATTRIB on a directory: its mode changed; try again (H17) what failed in it.

        The directory itself (not watchable or not readable), and every directory below it
        that failed: a directory readable but not searchable (mode 0644) lists its names
        while its subdirectories cannot be watched, until its own mode changes.
        """
        child = node.dirs.get(name)
        retry = self.placer.retry
        if child is None:
            return
        for sub in [s for s in retry if is_ancestor(child, s)]:
            del retry[sub]
            if sub.wd != UNWATCHED and self.tree.wds.get(sub.wd) is sub:
                self.placer.scan(sub, emit=True)  # watched, its read failed: read it now
            elif sub.parent is not None:
                self.placer.add_child(sub.parent, sub.name, emit=True)

    # -- repair ----------------------------------------------------------------------

    def check_moves(self) -> None:
        """Caught up: a moved directory not at its path means renames read late met
        watches placed after them (retry.misplaced); rescan to repair the view. Then the
        directories whose files a rename may have misplaced (``Placer.unsure``) are
        listed again and their file records reconciled (resync.reconcile_files)."""
        placer = self.placer
        if placer.moved and misplaced(placer):
            log.info("renames read late left the view wrong; %s", self._rescan())
        if not placer.unsure:
            return
        unsure, placer.unsure = placer.unsure, set()
        counts = reconcile_files(placer, unsure)
        if counts is None:
            log.info("renames read late left the view wrong; %s", self._rescan())
        elif any(counts.values()):
            repairs = ", ".join(f"{v} {k}" for k, v in counts.items())
            log.info("renames read late left file records wrong; repaired: %s", repairs)

    def _on_overflow(self) -> None:
        """IN_Q_OVERFLOW (H10): report, discard held halves and queued events, rescan."""
        self.placer.out.append(FsEvent(None, _OVERFLOW))
        log.warning(
            "inotify queue overflowed (IN_Q_OVERFLOW); %s; raise "
            "fs.inotify.max_queued_events if this repeats",
            self._rescan(),
            extra={"journal": {"MESSAGE_ID": MESSAGE_ID_OVERFLOW_REPAIRED}},
        )

    def _rescan(self) -> str:
        """Discard held halves and queued events, rescan every root (resync); a summary."""
        self.pairer.discard()
        dropped = len(self.drain())
        self.renames.displaced = None
        counts = resync(self.placer, self.recursive_of, self.roots.gone)
        self.placer.moved.clear()  # the rescan put every directory where it is
        self.placer.vacated.clear()
        self.placer.unsure.clear()
        repairs = ", ".join(f"{v} {k}" for k, v in counts.items())
        return (
            f"{dropped} queued events discarded; rescan of {len(self.tree.roots)} roots "
            f"repaired the view: {repairs}"
        )

    def retry_failed(self, err: int) -> None:
        """Try again to watch the directories that failed with ``err`` (see retry.py)."""
        retry_failed(self.placer, err)

    def retry_lost(self, *, settled: bool) -> None:
        """Try again the directories whose path went stale (see retry.retry_lost)."""
        retry_lost(self.placer, settled=settled)

    def settle(self, budget: int) -> int:
        """Refresh up to ``budget`` stale file records (see records.settle)."""
        return settle(self.placer, budget)
