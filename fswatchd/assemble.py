"""Turn validated rules into the dispatcher's runtime rules, with their built actions.

The rules package validates what an operator wrote; this module makes the objects that do
the work (``CommandAction``, ``ShellAction``, ``WebhookAction``), reading secret files and
resolving users and groups. It runs at start-up and on every reload, before anything is
swapped, so a problem found here keeps the old rules running like any other config error.

What the actions need from the system (users, groups, secret files, CA bundles) is checked
by one function, :func:`check_actions`, which ``build_runtimes`` runs first and ``fswatchd
check`` runs alone: check refuses exactly the rules that run refuses.
"""

from __future__ import annotations

from collections.abc import Callable

import aiohttp

from .actions.base import Action
from .actions.command import CommandAction
from .actions.credentials import resolve_credentials
from .actions.shell import ShellAction
from .actions.webhook import WebhookAction, make_ssl_context
from .dispatch import DispatchSettings, RuleRuntime
from .errors import ConfigError
from .rules import RuleEntry, RuleSet, RunAction, Settings
from .rules import ShellAction as ShellConfig
from .rules import WebhookAction as WebhookConfig

__all__ = ["build_runtimes", "check_actions", "dispatch_settings"]

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


def check_actions(ruleset: RuleSet) -> None:
    """Check what the rules' actions need from the system, without building them.

    Resolves ``user:`` and ``group:`` (getpwnam(3), getgrnam(3)) for rules with ``run:``
    or ``shell:`` actions, reads each webhook's ``secret_file`` and loads its ``ca_file``.
    Needs no event loop and opens no connection; the answer depends on who runs it (only
    root can switch users, and may read files others cannot).

    Args:
        ruleset: the validated rules.
    Raises:
        ConfigError: naming the file, line and key: an unknown ``user:``/``group:``,
            ``user:`` when not running as root, an unreadable ``secret_file`` (missing, a
            directory, no permission), a ``ca_file`` that is not a PEM bundle.
    """
    for entry in ruleset.entries:
        _needs(entry)


def build_runtimes(ruleset: RuleSet, session: SessionFactory) -> dict[str, RuleRuntime]:
    """Build every rule's actions, after :func:`check_actions`' checks.

    Args:
        ruleset: the validated rules.
        session: gives the shared ``aiohttp.ClientSession``; called only if a rule has a
            webhook.
    Returns:
        rule name -> :class:`~fswatchd.dispatch.RuleRuntime`, in rule order.
    Raises:
        ConfigError: as :func:`check_actions`.
    """
    # Every rule is checked before any is built: a refusal then comes before the HTTP
    # session exists, so nothing is left open behind it.
    secrets = [_needs(entry) for entry in ruleset.entries]
    return {
        e.rule.name: _runtime(e, ruleset.settings, session, s)
        for e, s in zip(ruleset.entries, secrets, strict=True)
    }


def _needs(entry: RuleEntry) -> list[bytes | None]:
    """Check ``entry``'s needs (see check_actions); the webhook secrets, by action index."""
    rule = entry.rule
    if any(not isinstance(action, WebhookConfig) for action in rule.actions):
        _check_credentials(entry)
    return [
        _webhook_secret(entry, i, action) if isinstance(action, WebhookConfig) else None
        for i, action in enumerate(rule.actions)
    ]


def _check_credentials(entry: RuleEntry) -> None:
    """Resolve the rule's user, then user and group; a refusal names the key at fault."""
    rule = entry.rule
    steps: list[tuple[str, str | None, str | None]] = []
    if rule.user is not None:
        steps.append(("user", rule.user, None))
    if rule.group is not None:
        steps.append(("group", rule.user, rule.group))
    for key, user, group in steps:
        try:
            resolve_credentials(user, group)
        except ValueError as exc:
            raise _error(entry, (key,), str(exc)) from exc


def _webhook_secret(entry: RuleEntry, index: int, config: WebhookConfig) -> bytes | None:
    """Read the webhook's secret and load its CA bundle; ConfigError at the key at fault."""
    hook = config.webhook
    at = ("actions", index, "webhook")
    if hook.ca_file is not None:
        try:
            make_ssl_context(hook.ca_file)
        except ValueError as exc:
            raise _error(entry, (*at, "ca_file"), f"{exc}; give a PEM bundle") from exc
    if hook.secret_file is None:
        return None
    try:
        with open(hook.secret_file, "rb") as f:
            # A trailing newline is an artefact of how the file was written, not key material.
            return f.read().rstrip(b"\r\n")
    except OSError as exc:
        reason = f"cannot read the secret {hook.secret_file}: {exc.strerror or exc}"
        raise _error(entry, (*at, "secret_file"), reason) from exc


def _error(entry: RuleEntry, path: tuple[str | int, ...], reason: str) -> ConfigError:
    """A ConfigError at ``path`` below the rule, with the line the loader recorded."""
    key = entry.key or "rules"
    for part in path:
        key += f"[{part}]" if isinstance(part, int) else f".{part}"
    return ConfigError(entry.file, entry.line_of(path), key, reason)


def _runtime(
    entry: RuleEntry, settings: Settings, session: SessionFactory, secrets: list[bytes | None]
) -> RuleRuntime:
    rule = entry.rule
    actions = tuple(
        _action(entry, index, settings, session, secret) for index, secret in enumerate(secrets)
    )
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


def _action(
    entry: RuleEntry,
    index: int,
    settings: Settings,
    session: SessionFactory,
    secret: bytes | None,
) -> Action:
    """Build ``entry.rule.actions[index]`` (checked by _needs); a refusal is a ConfigError."""
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
        hook = config.webhook
        return WebhookAction(
            hook.url,
            session=session(),
            timeout=hook.timeout,
            secret=secret,
            headers=hook.headers,
            retries=hook.retries,
            ca_file=hook.ca_file,
        )
    except (ValueError, OSError) as exc:
        raise _error(entry, ("actions", index), str(exc)) from exc
