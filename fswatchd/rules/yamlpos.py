"""YAML reading that remembers the line of every key and item, and refuses duplicate keys.

PyYAML's ``safe_load`` forgets where values came from and lets a repeated key silently
overwrite the first. Here the document is composed into nodes with a ``SafeLoader``
subclass, and built into plain Python values by walking the nodes, recording for each value
its *path* (``("rules", 1, "actions", 0, "run")``) and 1-based line. Only the YAML 1.1 core
types of ``SafeLoader`` are built; any other tag is an error.
"""

from __future__ import annotations

from typing import Any

import yaml

from ..errors import ConfigError

__all__ = ["KeyPath", "LineLoader", "Lines", "dotted", "load_yaml"]

#: A location inside the document: mapping keys and sequence indexes, outermost first.
KeyPath = tuple[str | int, ...]
#: KeyPath -> 1-based line where that key (or sequence item) is written.
Lines = dict[KeyPath, int]

_MERGE = "tag:yaml.org,2002:merge"
_COLLECTION_TAGS = frozenset({"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"})


class LineLoader(yaml.SafeLoader):
    """A SafeLoader that this module drives node by node (compose, then build with lines)."""


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
        ConfigError: YAML syntax, several documents, a duplicate key, a non-scalar key or
            an unsupported tag; with the line where it is.
    """
    loader = LineLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        lines: Lines = {(): node.start_mark.line + 1}
        return _build(loader, node, (), lines, file), lines
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


def _build(
    loader: LineLoader, node: yaml.Node, path: KeyPath, lines: Lines, file: str | None
) -> Any:
    """The Python value of ``node``; records lines of everything below ``path``."""
    if isinstance(node, yaml.MappingNode):
        return _build_mapping(loader, node, path, lines, file)
    if isinstance(node, yaml.SequenceNode):
        _plain_collection(node, path, file)
        items = []
        for i, item in enumerate(node.value):
            lines[(*path, i)] = _line(item)
            items.append(_build(loader, item, (*path, i), lines, file))
        return items
    return loader.construct_object(node)


def _plain_collection(node: yaml.Node, path: KeyPath, file: str | None) -> None:
    if node.tag not in _COLLECTION_TAGS:
        raise ConfigError(file, _line(node), dotted(path), f"unsupported YAML tag {node.tag}")


def _build_mapping(
    loader: LineLoader, node: yaml.MappingNode, path: KeyPath, lines: Lines, file: str | None
) -> dict[Any, Any]:
    """A dict from ``node``; a key written twice is an error (merge keys may be overridden)."""
    _plain_collection(node, path, file)
    first: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == _MERGE:
            continue
        key = _key(loader, key_node, path, file)
        if key in first:
            raise ConfigError(
                file,
                _line(key_node),
                dotted((*path, _part(key))),
                f"duplicate key (first written at line {first[key]})",
            )
        first[key] = _line(key_node)
    loader.flatten_mapping(node)  # resolves "<<: *anchor"; explicit keys come after merged
    out: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = _key(loader, key_node, path, file)
        lines[(*path, _part(key))] = _line(key_node)
        out[key] = _build(loader, value_node, (*path, _part(key)), lines, file)
    return out


def _part(key: Any) -> str:
    """A mapping key as a KeyPath element: keys are text (``1:`` is the key ``"1"``)."""
    return key if isinstance(key, str) else str(key)


def _key(loader: LineLoader, node: yaml.Node, path: KeyPath, file: str | None) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        raise ConfigError(file, _line(node), dotted(path), "a mapping key must be a plain value")
    return loader.construct_object(node)
