"""What every figure needs: the producer, scratch trees, sentinels, interleaved runs.

``Context`` carries the suite's settings (sizes, runs, warm-up, scratch directory, which
watchers to run). ``interleave`` runs a measurement A B A B ...: one round is every
available watcher once, one after another, never two at a time; round 0 is the warm-up.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .proc import OutputCounter
from .results import Metric, Results
from .watchers import BENCH, WatcherSpec

__all__ = [
    "Context",
    "build_producer",
    "interleave",
    "kernel_limit",
    "produce",
    "scratch",
    "sentinel",
    "tree_paths",
]

SENTINEL = "zz-bench-sentinel"


@dataclass
class Context:
    """Suite settings shared by all figures; ``sizes`` maps a size name to a count."""

    sizes: dict[str, int]
    runs: int
    warmup: int
    tmp: Path
    producer: Path
    results: Results
    only: Sequence[str] = ()
    timeout: float = 120.0
    log: Callable[[str], None] = print
    meta: dict[str, Any] = field(default_factory=dict)

    def wanted(self, name: str) -> bool:
        """True when ``--peers`` is empty or names ``name``."""
        return not self.only or name in self.only


def kernel_limit(name: str) -> int:
    """/proc/sys/fs/inotify/<name> (max_queued_events, max_user_watches, ...)."""
    return int(Path("/proc/sys/fs/inotify", name).read_text())


def build_producer(out_dir: Path) -> Path:
    """Compile bench/producer.c with cc into ``out_dir``, statically linked; its path.

    Compiled on every call (a fraction of a second): a binary left by an older build, with
    other flags, is never reused.

    Raises:
        subprocess.CalledProcessError: cc failed.
    """
    src = BENCH / "producer.c"
    exe = out_dir / "producer"
    out_dir.mkdir(parents=True, exist_ok=True)
    # Static: the producer is also figure 5's action, started 2,000 times; the dynamic
    # loader would be most of each start, and the figure measures the watcher.
    subprocess.run(["cc", "-O2", "-Wall", "-static", "-o", str(exe), str(src)], check=True)
    return exe


def produce(ctx: Context, *args: object) -> float:
    """Run the producer with ``args``; its wall time in seconds.

    Raises:
        subprocess.CalledProcessError: the producer failed (its message is on stderr).
    """
    t0 = time.monotonic()
    subprocess.run([str(ctx.producer), *map(str, args)], check=True)
    return time.monotonic() - t0


@contextlib.contextmanager
def scratch(ctx: Context, name: str) -> Iterator[Path]:
    """A fresh directory under the suite's scratch dir, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=ctx.tmp))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def sentinel(directory: Path, n: int, out: OutputCounter) -> bytes:
    """Create the n-th sentinel file in ``directory``, told to ``out`` first; its name.

    The name is registered with ``out`` before the file exists, so the watcher's line for
    it cannot arrive before the harness looks for it.
    """
    name = f"{SENTINEL}-{n:06d}".encode()
    out.expect(name)
    (directory / os.fsdecode(name)).write_bytes(b"")
    return name


def tree_paths(root: Path) -> set[bytes]:
    """Every path under ``root`` (root excluded), as bytes, without following symlinks."""
    out: set[bytes] = set()
    stack = [os.fsencode(root)]
    while stack:
        with os.scandir(stack.pop()) as it:
            for entry in it:
                out.add(entry.path)
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
    return out


def interleave(
    ctx: Context,
    figure: int,
    case: str,
    specs: Sequence[WatcherSpec],
    measure: Callable[[WatcherSpec, int, bool], None],
    metrics: Sequence[Metric],
) -> None:
    """Run ``measure(spec, run, warmup)`` for each available spec, A B A B, warm-up first.

    A spec that is unavailable gets a note on each metric instead; a measurement that
    fails gets a note for that run and the next spec runs.
    """
    ready = []
    for spec in specs:
        if not ctx.wanted(spec.name):
            continue
        reason = spec.unavailable()
        if reason is None:
            ready.append(spec)
            continue
        for m in metrics:
            ctx.results.add(figure, case, m, spec.name, 0, False, None, reason)
    for run in range(ctx.warmup + ctx.runs):
        for spec in ready:
            warm = run < ctx.warmup
            ctx.log(f"fig {figure} {case}: {spec.name} run {run}{' (warm-up)' if warm else ''}")
            try:
                measure(spec, run, warm)
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                ctx.log(f"fig {figure} {case}: {spec.name} failed: {exc}")
                for m in metrics:
                    ctx.results.add(figure, case, m, spec.name, run, warm, None, f"failed: {exc}")
