"""Placeholders in ``run:`` argv elements: ``{path}``, ``{dir}``, ... and ``{{``/``}}``.

A template is one argv element. Expansion never splits or joins elements: whatever bytes a
file name holds (spaces, quotes, ``$(...)``, newlines, non-UTF-8) become part of exactly the
element the placeholder stood in. ``{paths}`` is special: it must be a whole element, and the
caller expands it to one element per path of a batch.
"""

from __future__ import annotations

import os
import string
from collections.abc import Mapping
from typing import NamedTuple

__all__ = ["PLACEHOLDERS", "Template", "compile_template", "has_placeholder"]

#: Every placeholder a run: element may use. ``paths`` only as a whole element.
PLACEHOLDERS: frozenset[str] = frozenset(
    {"path", "src_path", "name", "dir", "root", "relpath", "mask", "rule", "paths"}
)

_formatter = string.Formatter()


class Template(NamedTuple):
    """A compiled argv element: literal byte chunks and placeholder names, in order.

    Attributes:
        parts: ``bytes`` literals and ``str`` placeholder names, alternating as written.
        fields: the placeholder names used.
        is_paths: the element is exactly ``{paths}`` (one element per batch path).
    """

    parts: tuple[bytes | str, ...]
    fields: frozenset[str]
    is_paths: bool

    def expand(self, values: Mapping[str, bytes]) -> bytes:
        """The element with each placeholder replaced by ``values[name]`` (absent: ``b""``).

        Args:
            values: placeholder name -> exact bytes (paths are never decoded).
        Returns:
            one argv element as bytes.
        """
        return b"".join(p if isinstance(p, bytes) else values.get(p, b"") for p in self.parts)


def compile_template(text: str, allowed: frozenset[str] = PLACEHOLDERS) -> Template:
    """Compile one argv element.

    Args:
        text: the element as written in the rules file.
        allowed: the placeholder names accepted.
    Returns:
        a :class:`Template`.
    Raises:
        ValueError: an unknown placeholder (``unknown placeholder {pth}; known: ...``), a
            format spec or conversion (``{path:>9}``, ``{path!r}``), an unmatched brace, or
            ``{paths}`` inside a larger element.
    """
    parts: list[bytes | str] = []
    try:
        parsed = list(_formatter.parse(text))
    except ValueError as exc:
        raise ValueError(f"{exc} in {text!r}; write {{{{ and }}}} for literal braces") from None
    for literal, field, spec, conversion in parsed:
        if literal:
            parts.append(os.fsencode(literal))
        if field is None:
            continue
        if spec or conversion:
            raise ValueError(f"placeholder {{{field}}} takes no format spec or conversion")
        if field not in allowed:
            known = " ".join(f"{{{n}}}" for n in sorted(allowed))
            raise ValueError(f"unknown placeholder {{{field}}}; known: {known}")
        parts.append(field)
    fields = frozenset(p for p in parts if isinstance(p, str))
    is_paths = parts == ["paths"]
    if "paths" in fields and not is_paths:
        raise ValueError("{paths} must be a whole argv element: it expands to one per path")
    return Template(tuple(parts), fields, is_paths)


def has_placeholder(text: str) -> bool:
    """True if ``text`` holds any ``{name}`` field (``{{``/``}}`` escapes do not count)."""
    try:
        return any(field is not None for _, field, _, _ in _formatter.parse(text))
    except ValueError:
        return True
