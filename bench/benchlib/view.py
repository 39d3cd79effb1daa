"""Replay a watcher's output into the set of paths it believes exist; compare with the tree.

Two line formats: fswatchd's JSON lines (``{"path": ..., "mask": ["CREATE"], "src_path":
...}``, paths with surrogateescape for non-UTF-8 bytes) and the peers' tab-separated
``NAMES<TAB>PATH[<TAB>DEST]`` (see peers/_common.py; watchdog's NAMES are its event types).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Replay", "compare", "replay"]

_ADD = {b"CREATE", b"MOVED_TO", b"created"}
_REMOVE = {b"DELETE", b"MOVED_FROM", b"deleted"}


def _events(
    path: Path, output: str
) -> Iterator[tuple[set[bytes], bytes, bytes | None, bytes | None]]:
    """(kinds, path, dest, src) per line; malformed lines are skipped."""
    with open(path, "rb") as f:
        for line in f:
            if output == "json":
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                mask = obj.get("mask") or []
                kinds = {k.encode() for k in (mask if isinstance(mask, list) else mask.split("|"))}
                p, src = obj.get("path"), obj.get("src_path")
                yield (kinds, os.fsencode(p) if p else b"", None,
                       os.fsencode(src) if src else None)  # fmt: skip
            else:
                parts = line.rstrip(b"\n").split(b"\t")
                if len(parts) >= 2:
                    yield (
                        set(parts[0].split(b",")),
                        parts[1],
                        (parts[2] if len(parts) > 2 else None),
                        None,
                    )


@dataclass
class Replay:
    """What a watcher's output says: the resulting view, overflow reports, line count."""

    view: set[bytes]
    overflows: int
    lines: int


def replay(path: Path, output: str, initial: set[bytes]) -> Replay:
    """Apply every create/delete/move in the output file at ``path`` to ``initial``."""
    view = set(initial)
    overflows = lines = 0
    for kinds, p, dest, src in _events(path, output):
        lines += 1
        if b"Q_OVERFLOW" in kinds:
            overflows += 1
        if b"moved" in kinds and dest is not None:  # watchdog: one event, both paths
            view.discard(p)
            view.add(dest)
        elif kinds & _ADD:
            if src is not None:
                view.discard(src)
            view.add(p)
        elif kinds & _REMOVE:
            view.discard(p)
    return Replay(view, overflows, lines)


def compare(view: set[bytes], tree: set[bytes], new: set[bytes]) -> dict[str, float]:
    """missing/extra path counts, and loss % of the ``new`` paths the view does not have."""
    missing = tree - view
    return {
        "missing": len(missing),
        "extra": len(view - tree),
        "loss_pct": 100.0 * len(missing & new) / len(new) if new else 0.0,
        "equal": float(view == tree),
    }
