"""Microbenchmark: cost per event of ``fswatchd watch --json`` formatting (no I/O).

Formats fabricated FsEvents shaped like a backlog drain (many files in a few directories,
CREATE / MODIFY / CLOSE_WRITE / DELETE, some directories and synthetic events) with the
naive way (``json.dumps`` of a dict per event) and with ``fswatchd.output``, in batches as
the watcher delivers them. Prints microseconds per event.

    .venv/bin/python bench/format_events.py [--events 600000] [--batch 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable, Sequence

from fswatchd.events import FsEvent, Mask, mask_names
from fswatchd.output import JsonLinesFormatter, TextFormatter

__all__ = ["fabricate", "main", "naive_json"]

_MASKS = (Mask.CREATE, Mask.MODIFY, Mask.CLOSE_WRITE, Mask.DELETE)


def fabricate(count: int) -> list[FsEvent]:
    """``count`` FsEvents under /tmp/fswatchd-bench: 100 files a directory, 1 in 50 a dir."""
    events = []
    for i in range(count):
        path = b"/tmp/fswatchd-bench/tree/dir%04d/file-%06d.txt" % (i // 100, i)
        mask = int(_MASKS[i % len(_MASKS)])
        is_dir = i % 50 == 0
        if is_dir:
            mask |= Mask.ISDIR
        events.append(FsEvent(path, mask, is_dir, synthetic=i % 7 == 0, root=b"/tmp"))
    return events


def naive_json(events: Sequence[FsEvent]) -> bytes:
    """The reference: one json.dumps per event."""
    lines = []
    for e in events:
        obj = {
            "path": None if e.path is None else os.fsdecode(e.path),
            "mask": list(mask_names(e.mask)),
            "is_dir": e.is_dir,
            "src_path": None if e.src_path is None else os.fsdecode(e.src_path),
            "synthetic": e.synthetic,
            "cookie": e.cookie,
        }
        lines.append(json.dumps(obj) + "\n")
    return "".join(lines).encode("ascii")


def _measure(
    name: str, fmt: Callable[[Sequence[FsEvent]], bytes], batches: list[list[FsEvent]]
) -> None:
    total = sum(len(b) for b in batches)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for batch in batches:
            fmt(batch)
        best = min(best, time.perf_counter() - start)
    print(f"{name:24} {best / total * 1e6:6.3f} us/event  ({total} events, best of 3)")


def main() -> None:
    """Run the comparison and print one line per formatter."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=600_000)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    events = fabricate(args.events)
    batches = [events[i : i + args.batch] for i in range(0, len(events), args.batch)]
    assert naive_json(batches[0]) == JsonLinesFormatter().format(batches[0])
    _measure("naive json.dumps", naive_json, batches)
    _measure("JsonLinesFormatter", JsonLinesFormatter().format, batches)
    _measure("TextFormatter", TextFormatter().format, batches)


if __name__ == "__main__":
    main()
