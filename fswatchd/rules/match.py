"""The matcher: which rules an FsEvent triggers. Pure, and called once per event.

Per rule, cheapest test first: the event mask against the rule's events (an int AND), then
the path against the rule's root prefixes (``bytes.startswith``), and only then the
include/exclude patterns (cached per path in :class:`~fswatchd.rules.globs.Filter`).

A paired rename is one ``MOVED_TO`` event carrying ``src_path``. For each rule it is one
match at most: a ``MOVED_TO`` on the new path if the rule listens for MOVED_TO and the new
path is its; else a ``MOVED_FROM`` on the old path if the rule listens for MOVED_FROM and
the old path is its. So a rename out of a rule's tree is a MOVED_FROM for that rule, and a
rename into it a MOVED_TO.
"""

from __future__ import annotations

from typing import NamedTuple

from ..events import FsEvent, Mask
from .model import Rule
from .ruleset import RuleEntry, RuleSet

__all__ = ["Match", "match"]

# Events that are reports about the watcher, not about a file: no rule runs on them.
_NOT_FOR_RULES = int(Mask.Q_OVERFLOW | Mask.ERROR | Mask.IGNORED | Mask.UNMOUNT)
_MOVED_TO = int(Mask.MOVED_TO)
_MOVED_FROM = int(Mask.MOVED_FROM)


class Match(NamedTuple):
    """One rule triggered by one event.

    Attributes:
        rule: the rule.
        root: the watched directory the path is under (for a file named by ``watch:``,
            its parent directory), bytes; ``root + b"/" + relpath == event.path``.
        relpath: the path relative to ``root`` (``b""`` for the root itself).
        event: the event as the rule sees it: for a rename the rule sees as MOVED_FROM, a
            copy with ``path`` the old path, MOVED_FROM in place of MOVED_TO and no
            ``src_path``; otherwise the event itself.
    """

    rule: Rule
    root: bytes
    relpath: bytes
    event: FsEvent


def match(ruleset: RuleSet, event: FsEvent) -> list[Match]:
    """The rules ``event`` triggers, in rule order, at most one match per rule.

    Args:
        ruleset: the rules in force.
        event: one event from the RecursiveWatcher.
    Returns:
        a list of :class:`Match`; empty for Q_OVERFLOW, ERROR, IGNORED and UNMOUNT
        (the daemon logs those) and for events no rule wants.
    """
    if event.mask & _NOT_FOR_RULES or event.path is None:
        return []
    out: list[Match] = []
    renamed = event.src_path is not None and event.mask & _MOVED_TO
    for entry in ruleset.entries:
        hit = _rename(entry, event) if renamed else _plain(entry, event)
        if hit is not None:
            out.append(hit)
    return out


def _plain(entry: RuleEntry, event: FsEvent) -> Match | None:
    if not event.mask & entry.events:
        return None
    assert event.path is not None
    return _locate(entry, event.path, event)


def _rename(entry: RuleEntry, event: FsEvent) -> Match | None:
    """A paired rename: MOVED_TO on the new path, else MOVED_FROM on the old one."""
    assert event.path is not None and event.src_path is not None
    if entry.events & _MOVED_TO:
        hit = _locate(entry, event.path, event)
        if hit is not None:
            return hit
    if entry.events & _MOVED_FROM:
        mask = (event.mask & ~_MOVED_TO) | _MOVED_FROM
        moved_from = event._replace(path=event.src_path, mask=mask, src_path=None)
        return _locate(entry, event.src_path, moved_from)
    return None


def _locate(entry: RuleEntry, path: bytes, event: FsEvent) -> Match | None:
    """The match of ``path`` against the rule's first root that takes it, or None."""
    for root in entry.roots:
        if root.file_path is not None:
            if path != root.file_path:
                continue
            relpath = path[len(root.prefix) :]
            defaults = False  # the operator named this file; it is not scratch
        elif path.startswith(root.prefix):
            relpath = path[len(root.prefix) :]
            if not root.recursive and b"/" in relpath:
                continue
            defaults = True
        elif path == root.path:
            relpath, defaults = b"", True
        else:
            continue
        if entry.filter.accepts(relpath, event.is_dir, defaults=defaults):
            return Match(entry.rule, root.path, relpath, event)
    return None
