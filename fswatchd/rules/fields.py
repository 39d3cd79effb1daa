"""Field checks of the rules file: one small validator per kind of value, and the
annotated types built from them. Each raises ValueError with the sentence the operator
sees; ``model.py`` composes them into the models. Pure: no I/O.
"""

from __future__ import annotations

import os
import re
from typing import Annotated, Any
from urllib.parse import urlsplit

import pathspec
from pydantic import AfterValidator, BeforeValidator, Field

from .._inotify.flags import SUBSCRIBABLE_NAMES, Mask, parse_mask
from ..template import PLACEHOLDERS, compile_template

__all__ = [
    "MAX_ID",
    "AbsPath",
    "Account",
    "Count",
    "Number",
    "Pattern",
    "Patterns",
    "Seconds",
    "absolute",
    "account",
    "argv_element",
    "as_list",
    "env_name",
    "header_name",
    "http_url",
    "no_newline",
    "no_nul",
    "not_bool",
    "parse_events",
    "pattern",
    "rule_name",
    "shell_script",
    "subscribable",
]

_NAME = re.compile(r"[A-Za-z0-9_.@:-]+")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token
# A placeholder written into a shell script: {path} but not ${path} (shell's own syntax).
_SHELL_PLACEHOLDER = re.compile(r"(?<![$\w])\{(" + "|".join(sorted(PLACEHOLDERS)) + r")\}")


#: The largest uid or gid: uid_t is 32 bits and (uid_t)-1 means "no change" to setreuid(2).
MAX_ID = 2**32 - 2


def absolute(value: str) -> str:
    """An absolute, lexically normalised path (``/a//b/`` -> ``/a/b``); else ValueError."""
    if not value.startswith("/"):
        raise ValueError(f"{value!r} is not an absolute path (it must start with /)")
    if "\0" in value:
        raise ValueError("a path cannot contain a NUL byte")
    return "/" + os.path.normpath(value).lstrip("/")


def as_list(value: Any) -> Any:
    """Let a single string stand for a one-element list."""
    return [value] if isinstance(value, str) else value


def parse_events(value: Any) -> Mask:
    """``"close_write"``, ``"CLOSE_WRITE,MOVED_TO"``, a list of names or a Mask -> a Mask.

    A plain number is refused: ``events: 8`` would be a kernel bit mask nobody can read.
    """
    if isinstance(value, Mask):
        return subscribable(value)
    names = as_list(value)
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or not names:
        got = f" (got {value!r})" if isinstance(value, int | float) else ""
        raise ValueError(f"events must be an event name or a list of event names{got}")
    mask = Mask(0)
    for name in names:
        try:
            mask |= parse_mask(name)
        except ValueError:
            raise ValueError(f"unknown event {name!r}; valid: {SUBSCRIBABLE_NAMES}") from None
    return subscribable(mask)


def subscribable(mask: Mask) -> Mask:
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


def pattern(value: str) -> str:
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


def no_nul(value: str) -> str:
    """Refuse NUL: execve(2) takes C strings, so no argv element or variable can hold one."""
    if "\0" in value:
        raise ValueError("cannot contain a NUL character")
    return value


def argv_element(value: str) -> str:
    """One ``run:`` element; its placeholders must compile (fswatchd.template)."""
    compile_template(no_nul(value))
    return value


def rule_name(value: str) -> str:
    """A rule name: 1 to 128 of ``A-Z a-z 0-9 _ . @ : -``; else ValueError."""
    if not _NAME.fullmatch(value) or len(value) > 128:
        raise ValueError(
            f"{value!r} is not a rule name: use 1 to 128 letters, digits and _ . @ : -"
        )
    return value


def env_name(value: str) -> str:
    """An environment variable name, not ``FSWATCHD_*`` (event data); else ValueError."""
    if not _ENV_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not a valid environment variable name")
    if value.startswith("FSWATCHD_"):
        raise ValueError(f"{value!r}: names starting FSWATCHD_ are reserved for event data")
    return value


def no_newline(value: str) -> str:
    """A header value without CR or LF (no header injection); else ValueError."""
    if "\r" in value or "\n" in value:
        raise ValueError("a header value cannot contain a line break")
    return value


def header_name(value: str) -> str:
    """An HTTP header name (an RFC 9110 token); else ValueError."""
    if not _HEADER_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not a valid HTTP header name")
    return value


def http_url(value: str) -> str:
    """An ``http://`` or ``https://`` URL with a host and a port in 1..65535; else ValueError.

    Control characters are refused rather than dropped: ``urlsplit`` silently removes CR,
    LF and TAB (bpo-43882), so the URL checked would not be the URL written.
    """
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError("a URL cannot contain a line break or another control character")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{value!r} is not an http:// or https:// URL")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise ValueError(f"{value!r}: the port must be a number from 1 to 65535")
    return value


def not_bool(value: Any) -> Any:
    """Refuse true/false where a number belongs (pydantic would take true as 1)."""
    if isinstance(value, bool):
        raise ValueError(f"must be a number, not {str(value).lower()}")
    return value


def account(value: str) -> str:
    """A ``user:`` or ``group:``: a name, or an id in ASCII digits from 0 to MAX_ID.

    Only ASCII digits make an id (``str.isdigit`` also accepts ``'٣'``, which ``int``
    reads as 3); anything else is a name, looked up when the actions are built.
    """
    no_nul(value)
    if value.isascii() and value.isdigit() and int(value) > MAX_ID:
        raise ValueError(f"{value} is not a valid id: ids run from 0 to {MAX_ID}")
    return value


def shell_script(value: str) -> str:
    """A ``shell:`` script without ``{placeholders}`` (``${VAR}`` is fine); else ValueError."""
    no_nul(value)
    found = _SHELL_PLACEHOLDER.search(value)
    if found:
        raise ValueError(
            f"placeholders such as {found.group(0)} are not expanded in shell: (a file name "
            "would become shell code); read the event from the environment instead, quoted: "
            '"$FSWATCHD_PATH", "$FSWATCHD_DIR", "$FSWATCHD_NAME", "$FSWATCHD_MASK"'
        )
    return value


AbsPath = Annotated[str, AfterValidator(absolute)]
#: A whole number, not a bool; the model adds its bounds (``Annotated[Count, Field(ge=1)]``).
Count = Annotated[int, BeforeValidator(not_bool)]
#: A finite number, not a bool; the model adds its bounds.
Number = Annotated[float, BeforeValidator(not_bool), Field(allow_inf_nan=False)]
Seconds = Annotated[Number, Field(gt=0)]
Account = Annotated[str, Field(min_length=1), AfterValidator(account)]
Pattern = Annotated[str, AfterValidator(pattern)]
Patterns = Annotated[tuple[Pattern, ...], BeforeValidator(as_list)]
