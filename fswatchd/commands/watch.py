"""``fswatchd watch [-r] [-e MASK[,MASK...]] [--json] PATH...``: print events, one a line.

The debugging and scripting face of the inotify core: the same RecursiveWatcher the daemon
uses, with each event written to stdout as it is read (see ``fswatchd.output`` for the two
line formats and docs/cli.md for the contract). Runs until SIGINT or SIGTERM (exit 0), until
stdout's reader goes away (exit 0), or until no root is left to watch (exit 1).
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import fcntl
import gc
import logging
import os
import signal
import stat
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, BinaryIO

from .._inotify.flags import SUBSCRIBABLE_NAMES, parse_mask
from ..errors import WatchError
from ..events import Mask
from ..logs import setup_logging
from ..output import Formatter, JsonLinesFormatter, TextFormatter
from ..sdnotify import notify

if TYPE_CHECKING:
    from ..watch.recursive import Root

__all__ = ["DEFAULT_MASK", "add_arguments", "main", "parse_events", "watch"]


log = logging.getLogger(__name__)

#: Without -e: every event but the read-side ones, which are noisy (every `cat`, every
#: directory listing, the watcher's own scans) and rarely what a person is looking for.
DEFAULT_MASK = int(Mask.ALL & ~(Mask.ACCESS | Mask.OPEN | Mask.CLOSE_NOWRITE))

# Names -e accepts: the events a watch can subscribe to (IN_ALL_EVENTS) and their aliases.
# Q_OVERFLOW and ERROR are always reported; add_watch options (ONLYDIR, ...) are not events.
_SELECTABLE = int(Mask.ALL)

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

#: Allocations between two collections of the youngest generation (CPython's default: 700).
_GC_THRESHOLD = 20_000

#: Capacity asked for a pipe on stdout, bytes: one read's worth of lines (~8,000 events).
_PIPE_SIZE = 1 << 20


def parse_events(text: str) -> int:
    """Parse one ``-e`` value, e.g. ``"close_write,MOVED_TO"`` (see ``parse_mask``).

    Args:
        text: comma-separated event names, case-insensitive, ``IN_`` prefix optional;
            CLOSE, MOVE and ALL stand for their members.
    Returns:
        the event bits as an int.
    Raises:
        argparse.ArgumentTypeError: an unknown name, or a name that is not an event a
            watch can subscribe to (ISDIR, ONLYDIR, Q_OVERFLOW, ...).
    """
    hint = (
        "use names like CREATE, CLOSE_WRITE, MOVE, DELETE or ALL "
        "(Q_OVERFLOW and ERROR are always reported)"
    )
    mask = 0
    for name in text.split(","):  # one at a time, so a refusal names the culprit
        try:
            bits = int(parse_mask(name))
        except ValueError:
            # Not parse_mask's own message: it lists every Mask name, watch flags too.
            raise argparse.ArgumentTypeError(
                f"unknown event name {name.strip()!r}; valid: {SUBSCRIBABLE_NAMES}"
            ) from None
        if bits & ~_SELECTABLE:
            raise argparse.ArgumentTypeError(
                f"{name.strip()!r} is not an event to watch for; {hint}"
            )
        mask |= bits
    if not mask:
        raise argparse.ArgumentTypeError(f"{text!r} names no event; {hint}")
    return mask


def _path(text: str) -> str:
    """A PATH argument; an empty one is a usage error (it would mean the current directory)."""
    if not text:
        raise argparse.ArgumentTypeError(
            "an empty PATH names nothing; write . for the current directory"
        )
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register ``watch``'s options on its subparser."""
    parser.add_argument(
        "-r", "--recursive", action="store_true", help="watch every directory below each PATH"
    )
    parser.add_argument(
        "-e",
        "--event",
        dest="events",
        action="append",
        type=parse_events,
        metavar="MASK[,MASK...]",
        help="report only these events (repeatable; default: all but ACCESS, OPEN and "
        "CLOSE_NOWRITE)",
    )
    parser.add_argument(
        "--json", action="store_true", help="one JSON object per line (see docs/cli.md)"
    )
    parser.add_argument("paths", nargs="+", type=_path, metavar="PATH", help="a directory to watch")


def main(args: argparse.Namespace) -> int:
    """Run ``fswatchd watch`` with parsed ``args``; return the exit code.

    Returns:
        0 after SIGINT/SIGTERM or when stdout's reader has gone away.
    Raises:
        WatchError: a PATH cannot be watched (missing, not a directory, EACCES), or the
            last root is gone (cli.main makes both exit 1 with the message).
        WatchLimitError: fs.inotify.max_user_watches reached while placing the watches.
    """
    # Imported here, not at the top: cli.py imports every command to build its parser.
    from ..watch.recursive import Root  # noqa: PLC0415

    setup_logging("stderr", "warning")
    # A backlog allocates two records per event that live for one slice of the stream
    # (~8,000 events); collecting young objects every 700 allocations made the collector
    # walk them again and again: 20,000 makes a drain ~17 % faster, the initial walk ~4 %.
    gc.set_threshold(_GC_THRESHOLD, *gc.get_threshold()[1:])
    mask = DEFAULT_MASK
    if args.events:
        mask = 0
        for bits in args.events:
            mask |= bits
    roots = [Root(os.path.abspath(os.fsencode(p)), recursive=args.recursive) for p in args.paths]
    formatter: Formatter = JsonLinesFormatter() if args.json else TextFormatter()
    _widen_pipe(sys.stdout.fileno())
    return asyncio.run(watch(roots, mask, formatter, sys.stdout.buffer))


def _widen_pipe(fd: int) -> None:
    """Give a pipe on ``fd`` room for a whole batch (fcntl(2) F_SETPIPE_SZ), if allowed.

    A default pipe holds 64 KiB: a backlog's batch (~1 MiB of JSON lines) would then be
    handed over in 16 turns of writer and reader. Best effort: a pipe stays as it is when
    the size is refused (EPERM above fs.pipe-max-size or the user's pipe quota, EBUSY).
    """
    try:
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return
        if fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ) < _PIPE_SIZE:
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
    except OSError as exc:
        log.debug("stdout pipe left at its size: %s", os.strerror(exc.errno or errno.EIO))


async def watch(roots: Sequence[Root], mask: int, formatter: Formatter, out: BinaryIO) -> int:
    """Watch ``roots`` and write each batch of events to ``out`` until told to stop.

    Args:
        roots: what to watch (absolute paths as bytes).
        mask: the events to report (inotify(7) bits); Q_OVERFLOW and ERROR always are.
        formatter: turns a batch into lines.
        out: a binary stream; written once and flushed per batch.
    Returns:
        0 after SIGINT/SIGTERM (handlers installed here, removed on return) or a broken
        pipe on ``out``.
    Raises:
        WatchError, WatchLimitError: from placing the initial watches, or when no root is
        left. READY=1 goes to $NOTIFY_SOCKET only once every initial watch is in place.
    """
    from ..watch.recursive import RecursiveWatcher  # noqa: PLC0415

    loop = asyncio.get_running_loop()
    watcher = RecursiveWatcher(roots, mask)
    stopped_by: list[signal.Signals] = []

    def on_signal(signum: signal.Signals) -> None:
        stopped_by.append(signum)
        # Back to the default disposition: a second Ctrl-C or SIGTERM acts at once, even
        # when the loop is stuck writing to a stdout nobody reads.
        _remove_handlers(loop)
        watcher.close()

    for signum in _STOP_SIGNALS:
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        await watcher.start()
        if stopped_by:
            return 0
        notify("READY=1")
        async for batch in watcher.batches():
            if not _write(out, formatter.format(batch)):
                return 0
    finally:
        _remove_handlers(loop)
        watcher.close()
    if stopped_by:
        log.debug("stopped by %s", stopped_by[0].name)
        return 0
    raise WatchError("watch: no root left to watch (each was deleted, moved or unmounted)")


def _remove_handlers(loop: asyncio.AbstractEventLoop) -> None:
    for signum in _STOP_SIGNALS:
        loop.remove_signal_handler(signum)


def _write(out: BinaryIO, data: bytes) -> bool:
    """Write and flush one batch; False when the reader of ``out`` has gone away (EPIPE)."""
    try:
        out.write(data)
        out.flush()
    except BrokenPipeError:
        # What is still buffered would be flushed again at interpreter exit and fail with a
        # second traceback-like warning; point the fd at /dev/null so that flush succeeds.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, out.fileno())
        os.close(devnull)
        return False
    return True
