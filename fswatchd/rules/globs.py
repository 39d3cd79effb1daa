"""A rule's include/exclude filter: gitignore-style patterns over paths relative to a root.

Patterns follow gitignore(5) as implemented by ``pathspec.GitIgnoreSpec``: a pattern with
no ``/`` (other than a trailing one) matches a name at any depth; a leading ``/`` anchors
it to the root; ``**`` spans directories; a trailing ``/`` matches directories only; a
pattern matching a directory also matches everything below it; ``!`` re-includes; the last
matching pattern wins.

Paths are bytes (Linux names are not text). They are decoded with ``os.fsdecode`` (the
filesystem encoding with ``surrogateescape``) only to match: an undecodable byte becomes a
lone surrogate that ``*`` and ``?`` match like any other character.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import pathspec

__all__ = ["DEFAULT_EXCLUDES", "Filter", "can_match_flat"]

#: Names of editor and transfer scratch files, excluded from every rule (files only, not
#: directories, matched against the name alone) unless the rule says
#: ``default_excludes: false``. docs/config.md lists who writes each one.
DEFAULT_EXCLUDES: tuple[str, ...] = (
    "4913",  # vim: probe file written to test that the directory is writable
    "*.swp",  # vim: swap file (also written without the leading dot by some setups)
    ".*.sw[a-p]",  # vim: swap files .NAME.swp, then .swo, .swn, ... when taken
    ".*.swx",  # vim: swap-file probe
    ".*.swpx",  # vim: swap-file probe (older versions)
    "*~",  # vim, emacs, nano, ...: backup copy
    ".#*",  # emacs: lock symlink
    "\\#*#",  # emacs: auto-save file
    ".*.??????",  # rsync: temporary .NAME.XXXXXX, renamed into place when complete
    "*.filepart",  # WinSCP and others: partial upload
    "*.part",  # Firefox, curl-style downloaders, KIO: partial download
    ".goutputstream-??????",  # GLib/GIO: temporary for atomic replace
)

_CACHE_LIMIT = 4096


def _spec(patterns: Sequence[str]) -> pathspec.GitIgnoreSpec | None:
    return pathspec.GitIgnoreSpec.from_lines(list(patterns)) if patterns else None


class Filter:
    """The include/exclude decision for one rule.

    Args:
        include: patterns a path must match (empty: every path).
        exclude: patterns a path must not match; an excluded directory is pruned.
        default_excludes: also exclude files named like :data:`DEFAULT_EXCLUDES`.

    Decisions are cached (bounded): events repeat the same few paths.
    """

    __slots__ = ("_cache", "_defaults", "_exclude", "_include")

    def __init__(
        self, include: Sequence[str], exclude: Sequence[str], *, default_excludes: bool
    ) -> None:
        self._include = _spec(include)
        self._exclude = _spec(exclude)
        self._defaults = _spec(DEFAULT_EXCLUDES) if default_excludes else None
        self._cache: dict[tuple[bytes, bool, bool], bool] = {}

    def accepts(self, relpath: bytes, is_dir: bool, *, defaults: bool = True) -> bool:
        """Whether an event on ``relpath`` passes include and exclude.

        Args:
            relpath: path relative to the watched root, bytes, no leading ``/``;
                ``b""`` for the root itself (which only a rule without include accepts).
            is_dir: the subject is a directory (then ``dir/`` patterns apply).
            defaults: apply the default excludes (False for a file named by ``watch:``).
        Returns:
            True when the rule wants the event.
        """
        key = (relpath, is_dir, defaults)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._decide(relpath, is_dir, defaults)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = hit
        return hit

    def _decide(self, relpath: bytes, is_dir: bool, defaults: bool) -> bool:
        if not relpath:
            return self._include is None
        text = os.fsdecode(relpath)
        if is_dir:
            text += "/"
        elif defaults and self._defaults is not None:
            name = text.rpartition("/")[2]
            if self._defaults.match_file(name):
                return False
        if self._exclude is not None and self._exclude.match_file(text):
            return False
        return self._include is None or self._include.match_file(text)

    def prunes(self, relpath: bytes) -> bool:
        """Whether the directory ``relpath`` (relative to the root, non-empty) is excluded.

        A pruned directory gets no watch, so nothing below it is ever seen.
        """
        if self._exclude is None or not relpath:
            return False
        return self._exclude.match_file(os.fsdecode(relpath) + "/")

    def includes_name(self, name: str) -> bool:
        """Whether the include patterns accept the single file name ``name`` (no ``/``)."""
        return self._include is None or self._include.match_file(name)


def can_match_flat(pattern: str) -> bool:
    """Whether ``pattern`` can match a path with no ``/`` (a direct child of a root).

    False for patterns with a directory part, such as ``reports/*.csv``; True for names,
    ``/name``, ``dir/`` and ``**/name``. Used to warn about includes under a
    non-recursive root.
    """
    body = pattern.removeprefix("!").removeprefix("/").removesuffix("/")
    parts = body.split("/")
    return all(part == "**" for part in parts[:-1])
