"""The pipeline's one-way data flow, enforced on the import graph.

A module may import only from its own layer or layers below it (lower numbers). Stages talk
through return values and async iterators; a module that reaches "up" is a design bug.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "fswatchd"

# Longest matching prefix wins. Lower layers know nothing of higher ones.
LAYERS: dict[str, int] = {
    "fswatchd": 0,
    "fswatchd.events": 0,
    "fswatchd.errors": 0,
    "fswatchd.template": 0,
    "fswatchd.message_ids": 0,
    "fswatchd.text": 0,
    "fswatchd._inotify.flags": 0,
    "fswatchd._inotify": 1,
    "fswatchd.watch": 2,
    "fswatchd.rules": 3,
    "fswatchd.actions": 4,
    "fswatchd.workqueue": 5,
    "fswatchd.dispatch": 5,
    "fswatchd.sdnotify": 6,
    "fswatchd.logs": 6,
    "fswatchd.supervisor": 7,
    "fswatchd.assemble": 7,
    "fswatchd.daemon": 7,
    "fswatchd.output": 8,
    "fswatchd.commands": 9,
    "fswatchd.cli": 9,
    "fswatchd.__main__": 9,
}


def layer_of(module: str) -> int:
    """The layer of ``module``: the entry of its longest dotted prefix in LAYERS."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        prefix = ".".join(parts[:n])
        if prefix in LAYERS:
            return LAYERS[prefix]
    raise AssertionError(f"{module} has no layer; add it to LAYERS")


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, module: str) -> list[str]:
    """Absolute names of the fswatchd modules that ``path`` imports."""
    tree = ast.parse(path.read_text(), str(path))
    is_pkg = path.name == "__init__.py"
    base = module.split(".") if is_pkg else module.split(".")[:-1]
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("fswatchd")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - (node.level - 1)]
                target = ".".join([*anchor, node.module] if node.module else anchor)
            else:
                target = node.module or ""
            if target.startswith("fswatchd"):
                found.append(target)
    return found


SOURCES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path: Path) -> None:
    module = module_name(path)
    mine = layer_of(module)
    upward = [m for m in imports_of(path, module) if layer_of(m) > mine]
    assert not upward, f"{module} (layer {mine}) imports higher layers: {upward}"


def test_layering_test_sees_the_package() -> None:
    assert len(SOURCES) > 5
    assert layer_of("fswatchd.watch.recursive") == 2
