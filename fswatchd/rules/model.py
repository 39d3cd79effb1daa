"""The rules file as pydantic models: every key, its type, its default and its checks.

Pure: no I/O. ``load.py`` reads YAML, validates it with :class:`Config` and maps pydantic's
error locations back to file lines. Every model is strict about keys (``extra='forbid'``,
so a typo is an error, not a silently ignored setting) and frozen (a loaded rule set never
changes; reload builds a new one). docs/config.md is the operator's reference for this file.
"""

from __future__ import annotations

import os
import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import pathspec
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainValidator,
    PrivateAttr,
    Tag,
    model_validator,
)
from pydantic_core import PydanticCustomError

from .._inotify.flags import EVENT_BITS, Mask, parse_mask
from ..template import PLACEHOLDERS, Template, compile_template

__all__ = [
    "ACTION_TAGS",
    "BATCH_PLACEHOLDERS",
    "DEFAULT_EVENTS",
    "Action",
    "Batch",
    "Config",
    "Rule",
    "RunAction",
    "Settings",
    "ShellAction",
    "Webhook",
    "WebhookAction",
]

#: Events a rule gets when it names none: a file fully written, or renamed into place.
DEFAULT_EVENTS = Mask.CLOSE_WRITE | Mask.MOVED_TO
#: Placeholders a ``run:`` element may use in a rule with ``batch:`` (one run, many paths).
BATCH_PLACEHOLDERS = frozenset({"paths", "rule"})
#: Tags of the action union; pydantic puts them in error locations, ``load.py`` drops them.
ACTION_TAGS = frozenset({"run-action", "shell-action", "webhook-action"})

_STRICT = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)
_NAME = re.compile(r"[A-Za-z0-9_.@:-]+")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token
# A placeholder written into a shell script: {path} but not ${path} (shell's own syntax).
_SHELL_PLACEHOLDER = re.compile(r"(?<![$\w])\{(" + "|".join(sorted(PLACEHOLDERS)) + r")\}")


_EVENT_NAMES = ", ".join(
    [str(bit.name) for bit in EVENT_BITS if bit & Mask.ALL] + ["CLOSE", "MOVE", "ALL"]
)


def _absolute(value: str) -> str:
    """An absolute, lexically normalised path (``/a//b/`` -> ``/a/b``); else ValueError."""
    if not value.startswith("/"):
        raise ValueError(f"{value!r} is not an absolute path (it must start with /)")
    if "\0" in value:
        raise ValueError("a path cannot contain a NUL byte")
    return "/" + os.path.normpath(value).lstrip("/")


def _as_list(value: Any) -> Any:
    """Let a single string stand for a one-element list."""
    return [value] if isinstance(value, str) else value


def _parse_events(value: Any) -> Mask:
    """``"close_write"``, ``"CLOSE_WRITE,MOVED_TO"``, a list of names or a Mask -> a Mask."""
    if isinstance(value, int) and not isinstance(value, bool):
        return _subscribable(Mask(value))
    names = _as_list(value)
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or not names:
        raise ValueError("events must be an event name or a list of event names")
    mask = Mask(0)
    for name in names:
        try:
            mask |= parse_mask(name)
        except ValueError:
            raise ValueError(f"unknown event {name!r}; valid: {_EVENT_NAMES}") from None
    return _subscribable(mask)


def _subscribable(mask: Mask) -> Mask:
    """``mask`` if it is a non-empty set of events a watch can ask for; else ValueError."""
    if not mask:
        raise ValueError("events must name at least one event")
    stray = Mask(mask & ~Mask.ALL)
    if stray:
        raise ValueError(
            f"{stray.name} is not an event a watch can subscribe to; "
            "use inotify event names such as CLOSE_WRITE, MOVED_TO, CREATE, DELETE, ALL"
        )
    return mask


def _pattern(value: str) -> str:
    """One gitignore-style pattern, checked by compiling it."""
    if not value.strip():
        raise ValueError("an empty pattern matches nothing; remove it")
    if value.startswith("#"):
        raise ValueError(f"{value!r} is a comment in gitignore syntax; write \\{value}")
    try:
        pathspec.GitIgnoreSpec.from_lines([value])
    except Exception as exc:  # pathspec raises several types for a bad pattern
        raise ValueError(f"invalid pattern {value!r}: {exc}") from None
    return value


def _no_nul(value: str) -> str:
    """Refuse NUL: execve(2) takes C strings, so no argv element or variable can hold one."""
    if "\0" in value:
        raise ValueError("cannot contain a NUL character")
    return value


def _argv_element(value: str) -> str:
    """One ``run:`` element; its placeholders must compile (fswatchd.template)."""
    compile_template(_no_nul(value))
    return value


def _rule_name(value: str) -> str:
    if not _NAME.fullmatch(value) or len(value) > 128:
        raise ValueError(
            f"{value!r} is not a rule name: use 1 to 128 letters, digits and _ . @ : -"
        )
    return value


def _env_name(value: str) -> str:
    if not _ENV_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not a valid environment variable name")
    if value.startswith("FSWATCHD_"):
        raise ValueError(f"{value!r}: names starting FSWATCHD_ are reserved for event data")
    return value


def _no_newline(value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError("a header value cannot contain a line break")
    return value


def _header_name(value: str) -> str:
    if not _HEADER_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not a valid HTTP header name")
    return value


def _url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{value!r} is not an http:// or https:// URL")
    return value


def _shell_script(value: str) -> str:
    _no_nul(value)
    found = _SHELL_PLACEHOLDER.search(value)
    if found:
        raise ValueError(
            f"placeholders such as {found.group(0)} are not expanded in shell: (a file name "
            "would become shell code); read the event from the environment instead, quoted: "
            '"$FSWATCHD_PATH", "$FSWATCHD_DIR", "$FSWATCHD_NAME", "$FSWATCHD_MASK"'
        )
    return value


AbsPath = Annotated[str, AfterValidator(_absolute)]
Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Pattern = Annotated[str, AfterValidator(_pattern)]
Patterns = Annotated[tuple[Pattern, ...], BeforeValidator(_as_list)]


class Settings(BaseModel):
    """The ``settings:`` mapping: daemon-wide knobs.

    Attributes:
        state_dir: absolute directory for the daemon's state (default ``/var/lib/fswatchd``).
        max_actions: actions running at once across all rules (default 32).
        log_level: ``debug``, ``info`` (default), ``warning`` or ``error``; case-insensitive.
    """

    model_config = _STRICT

    state_dir: AbsPath = "/var/lib/fswatchd"
    max_actions: int = Field(default=32, ge=1)
    log_level: Annotated[
        Literal["debug", "info", "warning", "error"],
        BeforeValidator(lambda v: v.lower() if isinstance(v, str) else v),
    ] = "info"


class Batch(BaseModel):
    """``batch:``: collect a rule's paths and run its actions once for all of them.

    Attributes:
        quiet: seconds without a new path that close the batch (> 0).
        max_wait: seconds after the first path at which the batch closes regardless
            (default 30, at least ``quiet``), so a steady trickle still gets processed.
    """

    model_config = _STRICT

    quiet: Seconds
    max_wait: Seconds = 30.0

    @model_validator(mode="after")
    def _max_wait_covers_quiet(self) -> Batch:
        if self.max_wait < self.quiet:
            raise PydanticCustomError(
                "batch", "{reason}", {"reason": "must be at least quiet", "at": ("max_wait",)}
            )
        return self


class RunAction(BaseModel):
    """``run: [argv...]``: execute a program directly (execve(2), no shell).

    Attributes:
        run: the argv, first element the program; each element may hold placeholders
            (fswatchd.template) that expand inside that element only.
        timeout: seconds before the child is stopped (default 60).
        templates: the compiled elements, in argv order (computed, not a key).
    """

    model_config = _STRICT

    run: tuple[Annotated[str, AfterValidator(_argv_element)], ...] = Field(min_length=1)
    timeout: Seconds = 60.0
    _templates: tuple[Template, ...] = PrivateAttr(default=())

    def model_post_init(self, context: Any, /) -> None:
        """Compile the argv once, at load, instead of once per event."""
        self._templates = tuple(compile_template(element) for element in self.run)

    @property
    def templates(self) -> tuple[Template, ...]:
        """The compiled argv elements (fswatchd.template.Template), one per ``run`` item."""
        return self._templates


class ShellAction(BaseModel):
    """``shell: 'script'``: run ``/bin/sh -c script``; event data only through the environment.

    Attributes:
        shell: the script; placeholders like ``{path}`` are refused (use ``$FSWATCHD_PATH``).
        timeout: seconds before the child is stopped (default 60).
    """

    model_config = _STRICT

    shell: Annotated[str, Field(min_length=1), AfterValidator(_shell_script)]
    timeout: Seconds = 60.0


class Webhook(BaseModel):
    """The ``webhook:`` mapping: an HTTP POST describing the event.

    Attributes:
        url: ``http://`` or ``https://`` URL.
        secret_file: absolute path of a file holding the signing secret, or None.
        headers: extra request headers (name -> value).
        timeout: seconds for one attempt, connect to last byte (default 10).
        ca_file: absolute path of a PEM bundle to verify the server with, or None (system).
        retries: further attempts after a failed one (default 5; 0 = none).
    """

    model_config = _STRICT

    url: Annotated[str, AfterValidator(_url)]
    secret_file: AbsPath | None = None
    headers: dict[
        Annotated[str, AfterValidator(_header_name)], Annotated[str, AfterValidator(_no_newline)]
    ] = Field(default_factory=dict)
    timeout: Seconds = 10.0
    ca_file: AbsPath | None = None
    retries: int = Field(default=5, ge=0)

    def __hash__(self) -> int:
        """Hash by URL: ``headers`` is a dict, and equal webhooks have equal URLs."""
        return hash(self.url)


class WebhookAction(BaseModel):
    """``webhook: {...}``: POST the event to a URL (see :class:`Webhook`)."""

    model_config = _STRICT

    webhook: Webhook


def _action_kind(value: Any) -> str | None:
    """The union tag for one action mapping: the single key among run/shell/webhook."""
    if isinstance(value, BaseModel):
        return {RunAction: "run-action", ShellAction: "shell-action"}.get(
            type(value), "webhook-action"
        )
    if not isinstance(value, dict):
        return None
    kinds = [k for k in ("run", "shell", "webhook") if k in value]
    return f"{kinds[0]}-action" if len(kinds) == 1 else None


#: One entry of ``actions:``; exactly one of the keys run, shell, webhook says which.
Action = Annotated[
    Annotated[RunAction, Tag("run-action")]
    | Annotated[ShellAction, Tag("shell-action")]
    | Annotated[WebhookAction, Tag("webhook-action")],
    Discriminator(
        _action_kind,
        custom_error_type="action_kind",
        custom_error_message="an action is a mapping with exactly one of run:, shell:, webhook:",
    ),
]


class Rule(BaseModel):
    """One entry of ``rules:``. docs/config.md describes each key; defaults are shown here.

    ``watch`` holds absolute, normalised path strings; which are files and which are
    directories is decided at load (``load.py``) and compiled into the ``RuleSet``.
    Hashable by ``name`` (unique within a rule set).
    """

    model_config = _STRICT

    name: Annotated[str, AfterValidator(_rule_name)]
    watch: Annotated[
        tuple[AbsPath, ...],
        BeforeValidator(_as_list),
        Field(min_length=1),
        AfterValidator(lambda paths: tuple(dict.fromkeys(paths))),
    ]
    recursive: bool = True
    events: Annotated[Mask, PlainValidator(_parse_events)] = DEFAULT_EVENTS
    include: Patterns = ()
    exclude: Patterns = ()
    default_excludes: bool = True
    debounce: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    batch: Batch | None = None
    concurrency: int = Field(default=4, ge=1)
    on_busy: Literal["queue", "coalesce"] = "queue"
    queue_limit: int = Field(default=1000, ge=1)
    stop_on_failure: bool = True
    env: dict[
        Annotated[str, AfterValidator(_env_name)], Annotated[str, AfterValidator(_no_nul)]
    ] = Field(default_factory=dict)
    cwd: AbsPath | None = None
    user: Annotated[str, Field(min_length=1)] | None = None
    group: Annotated[str, Field(min_length=1)] | None = None
    actions: tuple[Action, ...] = Field(min_length=1)

    def __hash__(self) -> int:
        """Hash by name: ``env`` is a dict, and names are unique within a RuleSet."""
        return hash(self.name)

    @model_validator(mode="after")
    def _cross_checks(self) -> Rule:
        problem = _batch_problem(self)
        if problem is not None:
            at, reason = problem
            raise PydanticCustomError("rule", "{reason}", {"reason": reason, "at": at})
        return self


def _batch_problem(rule: Rule) -> tuple[tuple[str | int, ...], str] | None:
    """The first conflict between ``batch:`` and the other keys: (location, reason), or None."""
    if rule.batch is not None and rule.debounce > 0:
        return ("debounce",), "debounce and batch: exclude each other; batch.quiet debounces"
    for i, action in enumerate(rule.actions):
        if not isinstance(action, RunAction):
            continue
        for j, template in enumerate(action.templates):
            if rule.batch is None and template.is_paths:
                return ("actions", i, "run", j), "{paths} needs a rule with batch:"
            stray = template.fields - BATCH_PLACEHOLDERS
            if rule.batch is not None and stray:
                names = " ".join(f"{{{n}}}" for n in sorted(stray))
                reason = f"{names}: a batch: rule runs once for many paths; use {{paths}}"
                return ("actions", i, "run", j), reason
    return None


class Config(BaseModel):
    """One rules file: ``settings:`` (optional) and ``rules:``.

    Rule names are unique within the file (checked here) and across a directory of files
    (checked by ``load.py``).
    """

    model_config = _STRICT

    settings: Settings = Field(default_factory=Settings)
    rules: tuple[Rule, ...] = ()

    @model_validator(mode="after")
    def _unique_names(self) -> Config:
        seen: dict[str, int] = {}
        for i, rule in enumerate(self.rules):
            if rule.name in seen:
                reason = f"duplicate rule name {rule.name!r} (also rules[{seen[rule.name]}])"
                raise PydanticCustomError(
                    "rule", "{reason}", {"reason": reason, "at": ("rules", i, "name")}
                )
            seen[rule.name] = i
        return self
