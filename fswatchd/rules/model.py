"""The rules file as pydantic models: every key, its type, its default and its checks.

Pure: no I/O. ``load.py`` reads YAML, validates it with :class:`Config` and maps pydantic's
error locations back to file lines. Every model is strict about keys (``extra='forbid'``,
so a typo is an error, not a silently ignored setting) and frozen (a loaded rule set never
changes; reload builds a new one). docs/config.md is the operator's reference for this file.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

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

from .._inotify.flags import Mask
from ..template import Template, compile_template
from .fields import (
    AbsPath,
    Account,
    Count,
    Number,
    Patterns,
    Seconds,
    argv_element,
    as_list,
    env_name,
    header_name,
    http_url,
    no_newline,
    no_nul,
    parse_events,
    rule_name,
    shell_script,
)

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


class Settings(BaseModel):
    """The ``settings:`` mapping: daemon-wide knobs.

    Attributes:
        state_dir: absolute directory for the daemon's state (default ``/var/lib/fswatchd``).
        max_actions: actions running at once across all rules (default 32).
        log_level: ``debug``, ``info`` (default), ``warning`` or ``error``; case-insensitive.
        stop_timeout: seconds a stop waits for running actions before terminating them
            (default 30; keep the unit's ``TimeoutStopSec=`` above this plus ``kill_grace``).
        kill_grace: seconds between SIGTERM and SIGKILL for a child's process group, on
            timeout and on stop (default 5).
        loop_window: seconds after a rule's job for a path during which a new event for
            that path counts as caused by the job (default 1; loop protection).
        loop_limit: self-caused jobs in a row after which a path is paused (default 3;
            0 turns loop protection off).
        max_chain: depth of derived file names (``a``, ``a.out``, ``a.out.out``...) beyond
            which events are dropped (default 8; 0 turns the limit off).
    """

    model_config = _STRICT

    state_dir: AbsPath = "/var/lib/fswatchd"
    max_actions: Count = Field(default=32, ge=1)
    log_level: Annotated[
        Literal["debug", "info", "warning", "error"],
        BeforeValidator(lambda v: v.lower() if isinstance(v, str) else v),
    ] = "info"
    stop_timeout: Number = Field(default=30.0, ge=0)
    kill_grace: Number = Field(default=5.0, ge=0)
    loop_window: Number = Field(default=1.0, ge=0)
    loop_limit: Count = Field(default=3, ge=0)
    max_chain: Count = Field(default=8, ge=0)


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


def _has_program(argv: tuple[str, ...]) -> tuple[str, ...]:
    """Refuse a first element that names no program: empty, or ``{paths}`` (no paths, no
    program; many paths, the first would be run on the rest)."""
    if argv and not argv[0]:
        reason = "the program (first element) is empty"
    elif argv and compile_template(argv[0]).is_paths:
        reason = "the program (first element) cannot be {paths}"
    else:
        return argv
    raise PydanticCustomError("argv", "{reason}", {"reason": reason, "at": (0,)})


class RunAction(BaseModel):
    """``run: [argv...]``: execute a program directly (execve(2), no shell).

    Attributes:
        run: the argv, first element the program; each element may hold placeholders
            (fswatchd.template) that expand inside that element only.
        timeout: seconds before the child is stopped (default 60).
        templates: the compiled elements, in argv order (computed, not a key).
    """

    model_config = _STRICT

    run: Annotated[
        tuple[Annotated[str, AfterValidator(argv_element)], ...],
        Field(min_length=1),
        AfterValidator(_has_program),
    ]
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

    shell: Annotated[str, Field(min_length=1), AfterValidator(shell_script)]
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

    url: Annotated[str, AfterValidator(http_url)]
    secret_file: AbsPath | None = None
    headers: dict[
        Annotated[str, AfterValidator(header_name)], Annotated[str, AfterValidator(no_newline)]
    ] = Field(default_factory=dict)
    timeout: Seconds = 10.0
    ca_file: AbsPath | None = None
    retries: Count = Field(default=5, ge=0)

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

    name: Annotated[str, AfterValidator(rule_name)]
    watch: Annotated[
        tuple[AbsPath, ...],
        BeforeValidator(as_list),
        Field(min_length=1),
        AfterValidator(lambda paths: tuple(dict.fromkeys(paths))),
    ]
    recursive: bool = True
    events: Annotated[Mask, PlainValidator(parse_events)] = DEFAULT_EVENTS
    include: Patterns = ()
    exclude: Patterns = ()
    default_excludes: bool = True
    debounce: Number = Field(default=0.0, ge=0)
    batch: Batch | None = None
    concurrency: Count = Field(default=4, ge=1)
    on_busy: Literal["queue", "coalesce"] = "queue"
    queue_limit: Count = Field(default=1000, ge=1)
    stop_on_failure: bool = True
    env: dict[Annotated[str, AfterValidator(env_name)], Annotated[str, AfterValidator(no_nul)]] = (
        Field(default_factory=dict)
    )
    cwd: AbsPath | None = None
    user: Account | None = None
    group: Account | None = None
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
