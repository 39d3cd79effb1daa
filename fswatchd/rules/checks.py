"""Warnings about a valid rule set: things that load but will probably not do what was meant.

``fswatchd check`` prints them and the daemon logs them at start and reload. None stops a
rule from loading. Each is one sentence: which rule, what is wrong, what to do.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator

from .._inotify.flags import Mask, mask_names
from .globs import can_match_flat
from .model import RunAction, ShellAction
from .mounts import REMOTE_HINT, is_remote, mount_of, parse_mountinfo
from .ruleset import Root, RuleEntry, RuleSet

__all__ = ["SHELL_TOKENS", "warnings"]

#: argv elements that mean something only to a shell; in ``run:`` they are plain arguments.
SHELL_TOKENS = frozenset({";", "|", "||", "&&", "&", ">", ">>", "<", "2>", "2>&1", "&>"})
_READ_EVENTS = int(Mask.ACCESS | Mask.OPEN | Mask.CLOSE_NOWRITE)
_EARLY_EVENTS = int(Mask.CREATE | Mask.MODIFY)
_PATH_FIELDS = frozenset({"path", "paths", "src_path", "name", "relpath"})

Check = Callable[[RuleEntry], Iterator[str]]


def warnings(ruleset: RuleSet, *, mountinfo: str | None = None) -> list[str]:
    """The warnings for ``ruleset``, each a sentence starting with the rule's location.

    Args:
        ruleset: a loaded rule set.
        mountinfo: the text of proc(5) ``/proc/self/mountinfo`` (default: read it), to find
            the filesystem type under each root.
    Returns:
        a list of strings, in rule order; empty when nothing looks wrong.

    Reads the filesystem (lstat of roots and named files); never raises for I/O errors.
    """
    if mountinfo is None:
        mountinfo = _read_mountinfo()
    mounts = parse_mountinfo(mountinfo)
    checks: tuple[Check, ...] = (
        _read_events,
        _early_events,
        _shell_in_argv,
        _flat_includes,
        lambda e: _roots(e, mounts),
        _named_files,
    )
    return [
        f"{entry.where}: {text}" for entry in ruleset.entries for c in checks for text in c(entry)
    ]


def _read_mountinfo() -> str:
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
            return f.read()
    except OSError:
        return ""


def _reads_files(entry: RuleEntry) -> bool:
    """Whether an action of the rule gets the event's path (so it probably opens it)."""
    for action in entry.rule.actions:
        if isinstance(action, ShellAction):
            return True
        if isinstance(action, RunAction) and any(t.fields & _PATH_FIELDS for t in action.templates):
            return True
    return False


def _read_events(entry: RuleEntry) -> Iterator[str]:
    if entry.events & _READ_EVENTS and _reads_files(entry):
        names = "/".join(mask_names(entry.events & _READ_EVENTS))
        yield (
            f"events {names} fire when a file is read, and this rule's actions read the "
            "files it reports: each run can trigger the next; drop those events"
        )


def _early_events(entry: RuleEntry) -> Iterator[str]:
    if entry.events & _EARLY_EVENTS and _reads_files(entry):
        names = "/".join(mask_names(entry.events & _EARLY_EVENTS))
        yield (
            f"events {names} arrive while the file is still being written, so actions may "
            "read half a file; use CLOSE_WRITE (and MOVED_TO) instead"
        )


def _shell_in_argv(entry: RuleEntry) -> Iterator[str]:
    for i, action in enumerate(entry.rule.actions):
        if not isinstance(action, RunAction):
            continue
        for j, arg in enumerate(action.run):
            if arg in SHELL_TOKENS or "$(" in arg or "`" in arg:
                yield (
                    f"actions[{i}].run[{j}] is {arg!r}, which only a shell understands; run: "
                    "passes it to the program as is. For a pipeline or redirection use shell:"
                )


def _flat_includes(entry: RuleEntry) -> Iterator[str]:
    """Includes that no path of a non-recursive (or file) root can ever match."""
    dir_roots = [r for r in entry.roots if r.file_path is None]
    if dir_roots and not any(r.recursive for r in dir_roots):
        for pattern in entry.rule.include:
            if not can_match_flat(pattern):
                yield (
                    f"include {pattern!r} has a directory part, but recursive: false "
                    "reports only direct children: it can never match"
                )
    if entry.rule.include:
        for root in entry.roots:
            if root.name is not None and not entry.filter.includes_name(os.fsdecode(root.name)):
                yield (
                    f"watch {os.fsdecode(root.file_path or b'')!r} is a file whose name no "
                    "include pattern matches: the rule can never run"
                )


def _roots(entry: RuleEntry, mounts: list[tuple[str, str]]) -> Iterator[str]:
    for watch, root in zip(entry.rule.watch, entry.roots, strict=True):
        yield from _one_root(watch, root, mounts)


def _one_root(watch: str, root: Root, mounts: list[tuple[str, str]]) -> Iterator[str]:
    try:
        st = os.lstat(watch)
    except OSError:
        yield (
            f"watch {watch!r} does not exist (yet); it is taken to be a directory (to follow "
            "a file by name, create the file before loading the rules)"
        )
        return
    if stat.S_ISLNK(st.st_mode):
        yield (
            f"watch {watch!r} is a symbolic link (to {os.path.realpath(watch)!r}); events "
            "name paths under the link, and a changed link is not followed; "
            "prefer the real path"
        )
    found = mount_of(os.path.realpath(os.fsdecode(root.path)), mounts)
    if found is not None and is_remote(found[1]):
        point, fstype = found
        yield (f"watch {watch!r} is on a {fstype} filesystem (mounted at {point}): {REMOTE_HINT}")


def _named_files(entry: RuleEntry) -> Iterator[str]:
    """A ``cwd:`` that is not a directory now. (A webhook's secret_file and ca_file are
    read when the actions are built, where a missing one is an error, not a warning.)"""
    rule = entry.rule
    if rule.cwd is not None and not os.path.isdir(rule.cwd):
        yield f"cwd {rule.cwd!r} is not a directory (yet); its actions would fail to start"
