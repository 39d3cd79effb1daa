"""``fswatchd check [-c PATH]``: validate the rules and show what they would do, without running.

Prints each rule (roots, events, filters, actions), an estimate of the inotify watches the
roots need against ``fs.inotify.max_user_watches``, and the warnings the daemon would log.
An invalid file raises ConfigError, which ``fswatchd.cli`` turns into exit status 3; that
includes what the actions need from the system (users, groups, secret and CA files),
checked by the same function the daemon uses, so check fails exactly when run would.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Iterator
from typing import TextIO

from .._inotify.flags import mask_names
from .._inotify.limits import watch_limit
from ..rules import (
    DEFAULT_CONFIG,
    Estimate,
    RuleEntry,
    RuleSet,
    RunAction,
    ShellAction,
    config_path,
    count_watches,
    load_ruleset,
    warnings,
)
from ..rules.model import Action
from ..text import counted

__all__ = ["add_arguments", "describe", "main", "watch_budget"]


#: Seconds ``check`` spends at most counting directories under the roots.
COUNT_BUDGET = 3.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register ``-c/--config PATH`` on ``parser``."""
    parser.add_argument(
        "-c",
        "--config",
        metavar="PATH",
        help=f"rules file, or directory of *.yaml files (default: $FSWATCHD_CONFIG, "
        f"else {DEFAULT_CONFIG})",
    )


def main(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Load and describe the rules named by ``args.config``; return 0 when they are valid.

    Args:
        args: parsed arguments (``config``: str or None).
        out: where to print (default stdout).
    Returns:
        0 (valid, warnings or not).
    Raises:
        ConfigError: the rules are invalid, or an action's user, group, secret file or CA
            file is not usable (the CLI exits 3).
    """
    # Imported here: the CLI imports every command to build its parser, and the actions
    # bring aiohttp and ssl, which `fswatchd watch` does not need.
    from ..assemble import check_actions  # noqa: PLC0415 (see above)

    out = sys.stdout if out is None else out
    path = config_path(args.config)
    ruleset = load_ruleset(path)
    check_actions(ruleset)
    for line in describe(ruleset):
        print(line, file=out)
    estimate = count_watches(ruleset, budget=COUNT_BUDGET)
    limit = watch_limit()
    print(_estimate_line(estimate, limit), file=out)
    found = warnings(ruleset)
    budget = watch_budget(estimate, limit)
    if budget is not None:
        found.append(budget)
    for text in found:
        print(f"warning: {text}", file=out)
    count = len(ruleset.rules)
    summary = f"{path}: valid, {counted(count, 'rule')}"
    print(f"{summary}, {counted(len(found), 'warning')}", file=out)
    return 0


def describe(ruleset: RuleSet) -> Iterator[str]:
    """Lines describing every rule: where written, roots, events, filters, timing, actions."""
    for entry in ruleset.entries:
        yield from _rule_lines(entry)
    settings = ruleset.settings
    shown = (f"{name} {_setting(getattr(settings, name))}" for name in type(settings).model_fields)
    yield f"settings: {', '.join(shown)}"


def _setting(value: object) -> str:
    """A setting's value as the rules file would write it: ``30``, not ``30.0``."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def _rule_lines(entry: RuleEntry) -> Iterator[str]:
    rule = entry.rule
    yield f"rule {rule.name}  ({entry.file}:{entry.line})"
    for watch, root in zip(rule.watch, entry.roots, strict=True):
        if root.file_path is not None:
            kind = "file, followed by name through its directory"
        else:
            kind = "recursive" if root.recursive else "direct children only"
        yield f"  watch    {watch}  ({kind})"
    yield f"  events   {' '.join(mask_names(entry.events))}"
    if rule.include:
        yield f"  include  {' '.join(rule.include)}"
    excludes = list(rule.exclude) + (["(default excludes)"] if rule.default_excludes else [])
    if excludes:
        yield f"  exclude  {' '.join(excludes)}"
    yield f"  timing   {_timing(entry)}"
    for i, action in enumerate(rule.actions, 1):
        yield f"  action {i} {_action(action)}"


def _timing(entry: RuleEntry) -> str:
    rule = entry.rule
    if rule.batch is not None:
        wait = f"batch quiet {rule.batch.quiet:g} s, max_wait {rule.batch.max_wait:g} s"
    else:
        wait = f"debounce {rule.debounce:g} s" if rule.debounce else "no debounce"
    stop = "stop" if rule.stop_on_failure else "go on"
    return (
        f"{wait}, concurrency {rule.concurrency}, on_busy {rule.on_busy} "
        f"(queue_limit {rule.queue_limit}), {stop} after a failed action"
    )


def _action(action: Action) -> str:
    if isinstance(action, RunAction):
        return f"run    {shlex.join(action.run)}  (timeout {action.timeout:g} s)"
    if isinstance(action, ShellAction):
        return f"shell  {_script(action.shell)}  (timeout {action.timeout:g} s)"
    hook = action.webhook
    return f"webhook POST {hook.url}  (timeout {hook.timeout:g} s, {hook.retries} retries)"


def _script(script: str) -> str:
    """A shell script as one shell word, as written; Python's repr (escapes) only for one
    holding a control character such as a newline, which would break the line."""
    if any(ord(c) < 32 or ord(c) == 127 for c in script):
        return repr(script)
    return shlex.quote(script)


def _estimate_line(estimate: Estimate, limit: int | None) -> str:
    bound = "" if estimate.complete else "at least "
    text = f"watches: {bound}{counted(estimate.dirs, 'directory', 'directories')}"
    if not estimate.complete:
        text += f" (stopped counting after {COUNT_BUDGET:g} s)"
    if estimate.unreadable:
        text += f", {estimate.unreadable} unreadable"
    limit_text = "unknown" if limit is None else str(limit)
    return f"{text}; fs.inotify.max_user_watches is {limit_text}"


def watch_budget(estimate: Estimate, limit: int | None) -> str | None:
    """A warning when the roots need more than 80 % of the per-user watch limit, else None.

    Args:
        estimate: from :func:`fswatchd.rules.count_watches`.
        limit: the effective ``fs.inotify.max_user_watches`` (count), None if unknown.
    """
    if limit is None or estimate.dirs * 5 <= limit * 4:
        return None
    want = 1 << max(estimate.dirs * 2, 1).bit_length()
    return (
        f"the roots hold {estimate.dirs} directories and fs.inotify.max_user_watches is "
        f"{limit}, shared by every program of this user: raise it, e.g. "
        f"'sysctl fs.inotify.max_user_watches={want}' (persist it in /etc/sysctl.d/)"
    )
