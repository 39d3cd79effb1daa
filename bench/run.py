#!/usr/bin/env python3
"""Run fswatchd's benchmark figures against its peers; print one table, write all runs as JSON.

usage: bench/run.py [--figures 1,2,...] [--sizes small|full] [--runs N] [--warmup N]
                    [--json OUT] [--peers a,b] [--set name=value ...]

Figures (see bench/README.md): 1 backlog drain, 2 ready on a big tree, 3 live burst and
overflow repair, 4 write-to-action latency, 5 commands/s, 6 webhook POSTs/s, 7 memory
after many events. Figures 4-7 need ``fswatchd run`` and report "n/a" for fswatchd until
it exists; their peers and floors still run.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import fig_burst, fig_daemon, fig_drain, fig_ready
from benchlib.common import Context, build_producer, kernel_limit
from benchlib.results import Results
from benchlib.watchers import BENCH

FIGURES: dict[int, Callable[[Context], None]] = {
    1: fig_drain.run,
    2: fig_ready.run,
    3: fig_burst.run,
    4: fig_daemon.run_latency,
    5: fig_daemon.run_commands,
    6: fig_daemon.run_webhooks,
    7: fig_daemon.run_memory,
}

#: Preset sizes. "full" is the issue's; "small" is the smoke run's (seconds in total).
SIZES: dict[str, dict[str, int]] = {
    "full": {
        "drain_files": 100_000, "drain_dirs": 1_000,
        "ready_dirs": 100_000, "ready_files_per_dir": 3,
        "burst_files": 200_000, "burst_dirs": 2_000, "repair_files": 100_000,
        "latency_samples": 200, "commands": 2_000, "webhooks": 4_000,
        "memory_events": 1_000_000, "concurrency": 16, "action_ms": 1, "quiet_ms": 2_000,
    },
    "small": {
        "drain_files": 1_000, "drain_dirs": 20,
        "ready_dirs": 200, "ready_files_per_dir": 3,
        "burst_files": 2_000, "burst_dirs": 20, "repair_files": 1_000,
        "latency_samples": 10, "commands": 40, "webhooks": 100,
        "memory_events": 20_000, "concurrency": 16, "action_ms": 10, "quiet_ms": 700,
    },
}  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    p.add_argument(
        "--figures",
        default=",".join(map(str, FIGURES)),
        help="comma-separated figure numbers (default: all)",
    )
    p.add_argument("--sizes", choices=sorted(SIZES), default="full")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=N",
        help="override one size, e.g. --set drain_files=20000",
    )
    p.add_argument("--runs", type=int, default=3, help="measured runs per watcher (median)")
    p.add_argument("--warmup", type=int, default=1, help="warm-up runs, not in the medians")
    p.add_argument("--peers", default="", help="comma-separated watcher names (default: all)")
    p.add_argument("--json", type=Path, help="output file (default bench/results/<time>.json)")
    p.add_argument("--tmp", type=Path, help="scratch directory (default: /dev/shm, else $TMPDIR)")
    p.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        help="seconds any one wait may take before that run counts as failed",
    )
    p.add_argument(
        "--drain-modes",
        default="backlog,batched,live",
        help="figure 1's modes, comma-separated (default: all three)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return p.parse_args(argv)  # fmt: skip


def make_context(args: argparse.Namespace, tmp: Path) -> Context:
    """Sizes, producer and settings for this run, from the parsed arguments."""
    sizes = dict(SIZES[args.sizes])
    for item in args.set:
        name, _, value = item.partition("=")
        if name not in sizes:
            raise SystemExit(f"run.py: --set {item}: unknown size; known: {', '.join(sizes)}")
        sizes[name] = int(value)
    log: Callable[[str], None] = (
        (lambda _m: None)
        if args.quiet
        else (lambda m: print(f"[{time.strftime('%H:%M:%S')}] {m}", file=sys.stderr, flush=True))
    )
    return Context(
        sizes=sizes, runs=args.runs, warmup=args.warmup, tmp=tmp,
        producer=build_producer(BENCH / "build"), results=Results(),
        only=[p for p in args.peers.split(",") if p], log=log, timeout=args.timeout,
    )  # fmt: skip


def _scratch() -> Path | None:
    """/dev/shm when it is a writable tmpfs: file creation there is not what is measured
    (on this machine's ext4 the producer made 1,000 files in 0.6 s, on tmpfs in 0.015 s)."""
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else None


def main(argv: list[str] | None = None) -> int:
    """Run the selected figures; print the table; write the JSON. Exit 0, or 1 if none ran."""
    args = parse_args(argv)
    figures = [int(f) for f in args.figures.split(",") if f]
    stamp = datetime.datetime.now().strftime("%Y%m%dT%H%M%S")
    out = args.json or BENCH / "results" / f"{stamp}.json"
    with tempfile.TemporaryDirectory(prefix="fswatchd-bench-", dir=args.tmp or _scratch()) as tmp:
        ctx = make_context(args, Path(tmp))
        ctx.meta.update(
            started=stamp, args=vars(args), sizes=ctx.sizes, host=platform.node(),
            kernel=platform.release(), cpus=os.cpu_count(), python=sys.version.split()[0],
            queue=kernel_limit("max_queued_events"),
            max_user_watches=kernel_limit("max_user_watches"),
            drain_modes=[m for m in args.drain_modes.split(",") if m],
        )  # fmt: skip
        for fig in figures:
            FIGURES[fig](ctx)
    print(ctx.results.table())
    ctx.results.write_json(out, ctx.meta)
    print(f"all runs: {out}")
    return 0 if ctx.results.samples else 1


if __name__ == "__main__":
    sys.exit(main())
