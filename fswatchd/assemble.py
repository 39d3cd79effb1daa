"""Turn validated rules into the dispatcher's runtime rules, with their built actions.

The rules package validates what an operator wrote; this module makes the objects that do
the work (``CommandAction``, ``ShellAction``, ``WebhookAction``), reading secret files and
resolving users and groups. It runs at start-up and on every reload, before anything is
swapped, so a problem found here keeps the old rules running like any other config error.
"""

from __future__ import annotations

from collections.abc import Callable

import aiohttp

from .actions.base import Action
from .actions.command import CommandAction
from .actions.shell import ShellAction
from .actions.webhook import WebhookAction
from .dispatch import DispatchSettings, RuleRuntime
from .errors import ConfigError
from .rules import RuleEntry, RuleSet, RunAction, Settings
from .rules import ShellAction as ShellConfig
from .rules import WebhookAction as WebhookConfig

__all__ = ["build_runtimes", "dispatch_settings"]

#: Returns the daemon's one HTTP session, creating it on first use.
SessionFactory = Callable[[], aiohttp.ClientSession]


def dispatch_settings(settings: Settings) -> DispatchSettings:
    """The dispatcher's daemon-wide knobs from the rules file's ``settings:``."""
    return DispatchSettings(
        max_actions=settings.max_actions,
        loop_window=settings.loop_window,
        loop_limit=settings.loop_limit,
        max_chain=settings.max_chain,
    )


def build_runtimes(ruleset: RuleSet, session: SessionFactory) -> dict[str, RuleRuntime]:
    """Build every rule's actions.

    Args:
        ruleset: the validated rules.
        session: gives the shared ``aiohttp.ClientSession``; called only if a rule has a
            webhook.
    Returns:
        rule name -> :class:`~fswatchd.dispatch.RuleRuntime`, in rule order.
    Raises:
        ConfigError: naming the file, line and key of an action that cannot be built: an
            unknown ``user:``/``group:``, ``user:`` when not running as root, an unreadable
            ``secret_file``, a ``ca_file`` that is not a PEM bundle.
    """
    return {e.rule.name: _runtime(e, ruleset.settings, session) for e in ruleset.entries}


def _runtime(entry: RuleEntry, settings: Settings, session: SessionFactory) -> RuleRuntime:
    rule = entry.rule
    actions = tuple(_action(entry, index, settings, session) for index in range(len(rule.actions)))
    batch = (rule.batch.quiet, rule.batch.max_wait) if rule.batch is not None else None
    return RuleRuntime(
        name=rule.name,
        actions=actions,
        debounce=rule.debounce,
        batch=batch,
        concurrency=rule.concurrency,
        on_busy=rule.on_busy,
        queue_limit=rule.queue_limit,
        stop_on_failure=rule.stop_on_failure,
    )


def _action(entry: RuleEntry, index: int, settings: Settings, session: SessionFactory) -> Action:
    """Build ``entry.rule.actions[index]``; map a refusal to a ConfigError at its key."""
    rule = entry.rule
    config = rule.actions[index]
    child = {
        "grace": settings.kill_grace,
        "cwd": rule.cwd,
        "user": rule.user,
        "group": rule.group,
        "env": rule.env,
    }
    try:
        if isinstance(config, RunAction):
            return CommandAction(config.templates, timeout=config.timeout, **child)
        if isinstance(config, ShellConfig):
            return ShellAction(config.shell, timeout=config.timeout, **child)
        assert isinstance(config, WebhookConfig)
        return _webhook(config, session)
    except (ValueError, OSError) as exc:
        key = f"{entry.key or 'rules'}.actions[{index}]"
        raise ConfigError(entry.file, entry.line, key, str(exc)) from exc


def _webhook(config: WebhookConfig, session: SessionFactory) -> WebhookAction:
    hook = config.webhook
    secret = None
    if hook.secret_file is not None:
        with open(hook.secret_file, "rb") as f:
            # A trailing newline is an artefact of how the file was written, not key material.
            secret = f.read().rstrip(b"\r\n")
    return WebhookAction(
        hook.url,
        session=session(),
        timeout=hook.timeout,
        secret=secret,
        headers=hook.headers,
        retries=hook.retries,
        ca_file=hook.ca_file,
    )
