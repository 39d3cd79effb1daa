"""RuleSet: validated rules compiled for the watcher (roots, mask, pruning) and the matcher.

A RuleSet is immutable; a reload builds a new one and the supervisor swaps the reference.
Building it does no I/O: which ``watch:`` paths are files is decided by the loader and
passed in, so tests build rule sets from fabricated input.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from .globs import Filter
from .model import Rule, Settings
from .yamlpos import KeyPath

__all__ = ["Root", "RuleEntry", "RuleSet"]


class Root(NamedTuple):
    """One ``watch:`` path of a rule, as the matcher tests it.

    Attributes:
        path: the directory the watcher watches (for a file: its parent directory).
        prefix: ``path`` with one trailing ``/``; paths below start with it.
        recursive: the whole tree below ``path`` counts, not just direct children.
        name: for a file named by ``watch:``, its name in ``path``; else None.
        file_path: for a file, its full path (``prefix + name``); else None.
    """

    path: bytes
    prefix: bytes
    recursive: bool
    name: bytes | None = None
    file_path: bytes | None = None


class RuleEntry(NamedTuple):
    """A rule compiled for matching, with where it was written.

    Attributes:
        rule: the validated rule.
        roots: its watch paths, compiled.
        events: its event mask as an int.
        filter: its include/exclude filter.
        file: the rules file it came from, or None.
        line: the line of its entry in ``rules:``, or None.
        key: its key path in that file, e.g. ``"rules[2]"``.
        lines: where the rule's own keys are written: (KeyPath below the rule, e.g.
            ``("actions", 0, "webhook", "secret_file")``, 1-based line) pairs; may be
            empty. A tuple, so that an entry stays hashable.
    """

    rule: Rule
    roots: tuple[Root, ...]
    events: int
    filter: Filter
    file: str | None = None
    line: int | None = None
    key: str = ""
    lines: tuple[tuple[KeyPath, int], ...] = ()

    def line_of(self, path: KeyPath) -> int | None:
        """The line of ``path`` below the rule, else of its nearest written parent, else
        the rule's own line (None if unknown). For messages: a linear search."""
        known = dict(self.lines)
        for n in range(len(path), 0, -1):
            if path[:n] in known:
                return known[path[:n]]
        return self.line

    @property
    def where(self) -> str:
        """``"rules.yaml:14: rules[2] (ingest)"``: how messages name this rule."""
        place = f"{self.file or '<config>'}:{self.line}" if self.line else self.file or "<config>"
        return f"{place}: {self.key} ({self.rule.name})"


def _root(watch: str, recursive: bool, is_file: bool) -> Root:
    path = os.fsencode(watch)
    if is_file:
        parent, _, name = path.rpartition(b"/")
        parent = parent or b"/"
        prefix = parent if parent == b"/" else parent + b"/"
        return Root(parent, prefix, False, name, path)
    return Root(path, path if path == b"/" else path + b"/", recursive)


def compile_rule(
    rule: Rule,
    file_roots: Iterable[str] = (),
    *,
    file: str | None = None,
    line: int | None = None,
    key: str = "",
    lines: Mapping[KeyPath, int] | None = None,
) -> RuleEntry:
    """Compile one rule.

    Args:
        rule: the validated rule.
        file_roots: the ``watch:`` paths (normalised strings) that name files, not
            directories; a file is watched by name through its parent directory,
            non-recursively, so a replace-by-rename keeps matching.
        file, line, key: where the rule was written, for messages.
        lines: where the rule's keys are written (see :attr:`RuleEntry.lines`).
    Returns:
        a :class:`RuleEntry`.
    """
    files = frozenset(file_roots)
    roots = tuple(_root(w, rule.recursive, w in files) for w in rule.watch)
    flt = Filter(rule.include, rule.exclude, default_excludes=rule.default_excludes)
    where = tuple((lines or {}).items())
    return RuleEntry(rule, roots, int(rule.events), flt, file, line, key, where)


class RuleSet:
    """The rules in force: what to watch and how events map to rules.

    Args:
        entries: compiled rules (:func:`compile_rule`), in file order; names unique.
        settings: the ``settings:`` of the rules file(s).
        sources: the files the rules came from, in load order.

    Attributes:
        rules: the rules, in order (tuple of :class:`~fswatchd.rules.model.Rule`).
        entries: the compiled rules, in the same order.
        settings: daemon-wide settings.
        sources: the files loaded.
        mask: the union of every rule's events (int), for the watches.
    """

    __slots__ = ("_root_paths", "entries", "mask", "rules", "settings", "sources")

    def __init__(
        self,
        entries: Sequence[RuleEntry],
        settings: Settings | None = None,
        sources: Sequence[str] = (),
    ) -> None:
        self.entries: tuple[RuleEntry, ...] = tuple(entries)
        self.rules: tuple[Rule, ...] = tuple(e.rule for e in self.entries)
        self.settings: Settings = settings if settings is not None else Settings()
        self.sources: tuple[str, ...] = tuple(sources)
        mask = 0
        for entry in self.entries:
            mask |= entry.events
        self.mask: int = mask
        self._root_paths = frozenset(r.path for e in self.entries for r in e.roots)

    @classmethod
    def from_rules(
        cls,
        rules: Sequence[Rule],
        settings: Settings | None = None,
        *,
        file_roots: Iterable[str] = (),
    ) -> RuleSet:
        """A RuleSet from validated rules, without positions (for code and tests).

        Args:
            rules: validated rules, names unique.
            settings: settings, default :class:`Settings()`.
            file_roots: the ``watch:`` paths that name files (see :func:`compile_rule`).
        """
        files = frozenset(file_roots)
        return cls([compile_rule(r, files) for r in rules], settings)

    def should_watch(self, dir_path: bytes) -> bool:
        """Whether the watcher should add a watch on the directory ``dir_path``.

        Args:
            dir_path: absolute path of a directory, bytes, no trailing ``/``.
        Returns:
            True for every root directory; for a directory below roots, True unless every
            rule whose recursive root covers it excludes it (``exclude:``), or none covers
            it (only direct children of a non-recursive root are reported, and those need
            no watch of their own).
        """
        if dir_path in self._root_paths:
            return True
        for entry in self.entries:
            for root in entry.roots:
                if (
                    root.recursive
                    and dir_path.startswith(root.prefix)
                    and not entry.filter.prunes(dir_path[len(root.prefix) :])
                ):
                    return True
        return False

    def roots(self) -> list[tuple[bytes, bool]]:
        """The directories the watcher must watch: ``[(path, recursive), ...]``, sorted.

        A file root contributes its parent directory, non-recursive. A path that is
        recursive for one rule and not for another is listed once, recursive. A root that
        a recursive root's watched tree already reaches (no pruned directory between
        them) is left out, so no directory is watched twice.
        """
        wanted: dict[bytes, bool] = {}
        for entry in self.entries:
            for root in entry.roots:
                wanted[root.path] = wanted.get(root.path, False) or root.recursive
        return sorted((p, r) for p, r in wanted.items() if not self._reached(p, wanted))

    def _reached(self, path: bytes, wanted: dict[bytes, bool]) -> bool:
        """Whether a recursive root above ``path`` gets watched down to ``path``."""
        parent = path
        while parent not in (b"/", b""):
            parent = parent.rpartition(b"/")[0] or b"/"
            if wanted.get(parent) and self._reaches(parent, path):
                return True
        return False

    def _reaches(self, top: bytes, path: bytes) -> bool:
        """Whether every directory from below ``top`` down to ``path`` passes should_watch."""
        step = path
        while step != top:
            if not self.should_watch(step):
                return False
            step = step.rpartition(b"/")[0] or b"/"
        return True
