"""YAML reading that remembers the line of every key and item, and refuses duplicate keys.

PyYAML's ``safe_load`` forgets where values came from and lets a repeated key silently
overwrite the first. Here the document is composed into nodes with a ``SafeLoader``
subclass, and built into plain Python values by walking the nodes, recording for each value
its *path* (``("rules", 1, "actions", 0, "run")``) and 1-based line. Only the YAML 1.1 core
types of ``SafeLoader`` are built; any other tag is an error.

The document is bounded before it is built, because a rules file may come from someone
other than the operator and a reload must never take the daemon down:

* Nesting deeper than :data:`MAX_DEPTH` is refused while composing (PyYAML's composer
  recurses once per level, so a file of 3000 ``[`` would otherwise exhaust Python's stack).
* Before building, one pass over the node graph visits every node once. It refuses an
  alias inside the collection it names (``a: &a [*a]``), which would expand forever, and a
  document whose expanded size passes :data:`MAX_NODES` (the "billion laughs": a 1 KB
  file of aliases of aliases that expands to 9**9 values). Depth is counted through
  aliases, so building never recurses deeper than :data:`MAX_DEPTH` either.
"""

from __future__ import annotations

from typing import Any

import yaml

from ..errors import ConfigError

__all__ = ["MAX_DEPTH", "MAX_NODES", "KeyPath", "LineLoader", "Lines", "dotted", "load_yaml"]

#: Deepest nesting of lists and mappings a document may have, counted through aliases.
#: A rules file needs about 8 levels.
MAX_DEPTH = 100
#: Most values (keys, items and collections) a document may hold once every alias is
#: counted as a copy of what it names. A rule takes about 20.
MAX_NODES = 100_000

#: A location inside the document: mapping keys and sequence indexes, outermost first.
KeyPath = tuple[str | int, ...]
#: KeyPath -> 1-based line where that key (or sequence item) is written.
Lines = dict[KeyPath, int]

_MERGE = "tag:yaml.org,2002:merge"
_COLLECTION_TAGS = frozenset({"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"})
_TOO_DEEP = f"nested deeper than {MAX_DEPTH} levels of lists and mappings"


class _TooDeep(Exception):
    """Raised by the composer at the node that passes MAX_DEPTH; carries its 1-based line."""

    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


class LineLoader(yaml.SafeLoader):
    """A SafeLoader that this module drives node by node (compose, then build with lines).

    Composing refuses nesting deeper than :data:`MAX_DEPTH` (raises ``_TooDeep``).
    """

    def __init__(self, stream: str) -> None:
        """Read ``stream`` (the document's text)."""
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        """PyYAML's compose_node, refusing a node nested deeper than MAX_DEPTH."""
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                event = self.peek_event()  # type: ignore[no-untyped-call]
                raise _TooDeep(int(event.start_mark.line) + 1)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def dotted(path: KeyPath) -> str:
    """``("rules", 1, "actions", 0, "run")`` -> ``"rules[1].actions[0].run"``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_yaml(text: str, file: str | None) -> tuple[Any, Lines]:
    """Parse one YAML document into plain values, with the line of every key and item.

    Args:
        text: the document.
        file: its path, for error messages.
    Returns:
        ``(value, lines)``: the document (``None`` when empty) and a KeyPath -> line map.
    Raises:
        ConfigError: YAML syntax, several documents, a duplicate key, a non-scalar key, an
            unsupported tag, nesting deeper than :data:`MAX_DEPTH`, an alias inside what
            it names, more than :data:`MAX_NODES` values after alias expansion; with the
            line where it is.
    """
    loader = LineLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        _Survey(loader, file).visit(node, (), 1, _line(node))
        lines: Lines = {(): node.start_mark.line + 1}
        return _build(loader, node, (), lines), lines
    except _TooDeep as exc:
        raise ConfigError(file, exc.line, "", _TOO_DEEP) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        reason = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise ConfigError(file, line, "", f"invalid YAML: {reason}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(file, None, "", f"invalid YAML: {exc}") from exc
    finally:
        loader.dispose()


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


class _Survey:
    """One pass over the composed node graph, before anything is built.

    Each node is visited once, where it is first written (an alias names a node already
    visited), so the pass costs the size of the text, not of its expansion. It records per
    node its expanded size and height, and refuses what building could not survive.
    """

    def __init__(self, loader: LineLoader, file: str | None) -> None:
        self._loader = loader
        self._file = file
        self._done: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded size, height)
        self._open: set[int] = set()  # the nodes being visited: a cycle comes back to one

    def visit(self, node: yaml.Node, path: KeyPath, depth: int, at: int) -> tuple[int, int]:
        """(expanded size, height) of ``node`` at ``depth``; raises ConfigError.

        ``at`` is the line that refers to ``node`` (its key's, or its list's): PyYAML keeps
        no position for an alias, so errors found at an alias are reported there.
        """
        known = self._done.get(id(node))
        line = at
        if known is None:
            if id(node) in self._open:
                raise self._error(line, path, "an alias refers to the anchor it is inside of")
            line = _line(node)
            self._open.add(id(node))
            known = self._children(node, path, depth)
            self._open.discard(id(node))
            self._done[id(node)] = known
        size, height = known
        if depth + height > MAX_DEPTH:
            raise self._error(line, path, f"{_TOO_DEEP}, counting through aliases")
        if size > MAX_NODES:
            reason = f"more than {MAX_NODES} values after alias expansion; aliases nest too deep"
            raise self._error(line, path, reason)
        return known

    def _children(self, node: yaml.Node, path: KeyPath, depth: int) -> tuple[int, int]:
        if depth > MAX_DEPTH:
            raise self._error(_line(node), path, f"{_TOO_DEEP}, counting through aliases")
        if isinstance(node, yaml.SequenceNode):
            self._plain_collection(node, path)
            at = _line(node)
            found = [
                self.visit(item, (*path, i), depth + 1, at) for i, item in enumerate(node.value)
            ]
        elif isinstance(node, yaml.MappingNode):
            found = self._mapping(node, path, depth)
        else:
            return 1, 0
        return 1 + sum(size for size, _ in found), 1 + max((h for _, h in found), default=0)

    def _mapping(self, node: yaml.MappingNode, path: KeyPath, depth: int) -> list[tuple[int, int]]:
        """Check keys (scalar, written once; merged keys may be overridden), visit values."""
        self._plain_collection(node, path)
        first: dict[Any, int] = {}
        found = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                # The merged mapping's keys land here, at this mapping's own path.
                found += [(1, 0), self.visit(value_node, path, depth + 1, _line(key_node))]
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                raise self._error(_line(key_node), path, "a mapping key must be a plain value")
            key = self._loader.construct_object(key_node)
            where = (*path, _part(key))
            if key in first:
                reason = f"duplicate key (first written at line {first[key]})"
                raise self._error(_line(key_node), where, reason)
            first[key] = _line(key_node)
            found += [(1, 0), self.visit(value_node, where, depth + 1, _line(key_node))]
        return found

    def _plain_collection(self, node: yaml.Node, path: KeyPath) -> None:
        if node.tag not in _COLLECTION_TAGS:
            raise self._error(_line(node), path, f"unsupported YAML tag {node.tag}")

    def _error(self, line: int, path: KeyPath, reason: str) -> ConfigError:
        return ConfigError(self._file, line, dotted(path), reason)


def _build(loader: LineLoader, node: yaml.Node, path: KeyPath, lines: Lines) -> Any:
    """The Python value of ``node`` (surveyed); records lines of everything below ``path``."""
    if isinstance(node, yaml.MappingNode):
        return _build_mapping(loader, node, path, lines)
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            lines[(*path, i)] = _line(item)
            items.append(_build(loader, item, (*path, i), lines))
        return items
    return loader.construct_object(node)


def _build_mapping(
    loader: LineLoader, node: yaml.MappingNode, path: KeyPath, lines: Lines
) -> dict[Any, Any]:
    """A dict from ``node``; a key next to a merge overrides the merged value."""
    # Resolves "<<: *anchor" in place (merged pairs first, so explicit keys win); a node
    # reached again through an alias is already flattened, and flattening it is a no-op.
    loader.flatten_mapping(node)
    out: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node)
        lines[(*path, _part(key))] = _line(key_node)
        out[key] = _build(loader, value_node, (*path, _part(key)), lines)
    return out


def _part(key: Any) -> str:
    """A mapping key as a KeyPath element: keys are text (``1:`` is the key ``"1"``)."""
    return key if isinstance(key, str) else str(key)
