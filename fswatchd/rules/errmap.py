"""Turn a pydantic ValidationError into a ConfigError naming file, line and key path.

pydantic reports locations as tuples of field names and indexes (plus the tag of a tagged
union, and, for checks made on a whole model, the location carried in ``ctx["at"]``). They
are mapped onto the YAML document's KeyPaths, whose lines ``yamlpos`` recorded.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from ..errors import ConfigError
from .model import (
    ACTION_TAGS,
    Batch,
    Config,
    Rule,
    RunAction,
    Settings,
    ShellAction,
    Webhook,
    WebhookAction,
)
from .yamlpos import KeyPath, Lines, dotted

__all__ = ["config_error"]

# Which model sits at a location (indexes written as "*"), to list valid keys.
_MODEL_AT: dict[tuple[str, ...], type[BaseModel]] = {
    (): Config,
    ("settings",): Settings,
    ("rules", "*"): Rule,
    ("rules", "*", "batch"): Batch,
    ("rules", "*", "actions", "*", "run-action"): RunAction,
    ("rules", "*", "actions", "*", "shell-action"): ShellAction,
    ("rules", "*", "actions", "*", "webhook-action"): WebhookAction,
    ("rules", "*", "actions", "*", "webhook-action", "webhook"): Webhook,
}

_MESSAGES = {
    "missing": "required key is missing",
    "dict_type": "must be a mapping (key: value)",
    "tuple_type": "must be a list",
    "model_type": "must be a mapping (key: value)",
}


def config_error(exc: ValidationError, file: str | None, lines: Lines) -> ConfigError:
    """The ConfigError for the first problem (by line) in ``exc``.

    Args:
        exc: from validating the document with :class:`Config`.
        file: the file's path, for the message.
        lines: the document's KeyPath -> line map (``yamlpos.load_yaml``).
    Returns:
        a ConfigError; when there are several problems, the reason says how many more.
    """
    located = [_locate(err, lines) for err in exc.errors()]
    # A failed item also fails its list's length check; report the item, not the list.
    paths = [path for _, path, _ in located]
    located = [
        item
        for item in located
        if not any(len(p) > len(item[1]) and p[: len(item[1])] == item[1] for p in paths)
    ]
    located.sort(key=lambda item: item[0] or 0)
    line, path, reason = located[0]
    key = dotted(path)
    if len(located) > 1:
        more = len(located) - 1
        reason += f" (and {more} more problem{'s' if more > 1 else ''} in this file)"
    return ConfigError(file, line, key, reason)


def _locate(err: ErrorDetails, lines: Lines) -> tuple[int | None, KeyPath, str]:
    """(line, key path, reason) for one pydantic error."""
    raw = tuple(err["loc"])
    ctx: dict[str, Any] = dict(err.get("ctx") or {})
    at = tuple(ctx.get("at", ()))
    loc = tuple(p for p in (*raw, *at) if p not in ACTION_TAGS and p != "[key]")
    path: KeyPath = ()
    for i, part in enumerate(loc):
        if (*path, part) in lines:
            path = (*path, part)
        elif isinstance(part, str) and i == len(loc) - 1:
            path = (*path, part)  # a missing key: name it, at its mapping's line
        else:
            break
    line = _line_of(path, lines)
    return line, path, _reason(err, raw, ctx)


def _line_of(path: KeyPath, lines: Lines) -> int | None:
    for n in range(len(path), -1, -1):
        if path[:n] in lines:
            return lines[path[:n]]
    return None


def _reason(err: ErrorDetails, raw: tuple[Any, ...], ctx: dict[str, Any]) -> str:
    kind = err["type"]
    if "reason" in ctx:
        return str(ctx["reason"])
    if kind == "extra_forbidden":
        return _unknown_key(raw)
    if kind in _MESSAGES:
        return _MESSAGES[kind]
    if kind == "value_error":
        return str(err["msg"]).removeprefix("Value error, ")
    msg = str(err["msg"])
    msg = msg[:1].lower() + msg[1:]
    value = err.get("input")
    if isinstance(value, str | int | float | bool):
        msg += f" (got {value!r})"
    return msg


def _unknown_key(raw: tuple[Any, ...]) -> str:
    shape = tuple("*" if isinstance(p, int) else p for p in raw[:-1])
    model = _MODEL_AT.get(shape)
    if model is None:
        return "unknown key"
    valid = ", ".join(model.model_fields)
    return f"unknown key {raw[-1]!r}; valid keys here: {valid}"
