"""``fswatchd run [-c PATH]``: the rules daemon, in the foreground until SIGTERM/SIGINT.

Exit status: 0 after a graceful stop; 3 when the rules are invalid at start (the unit's
``RestartPreventExitStatus=3``); 1 on a runtime failure (the unit's ``Restart=`` restarts).
"""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import gc
import logging
import os
import signal

from ..logs import LEVELS, TARGETS, setup_logging
from ..rules import RuleSet, config_path, load_ruleset
from ..text import counted
from .check import add_arguments as add_config_option

__all__ = ["add_arguments", "main"]


log = logging.getLogger("fswatchd")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register ``-c/--config``, ``--log-target`` and ``--log-level`` on ``parser``."""
    add_config_option(parser)
    parser.add_argument(
        "--log-target",
        choices=TARGETS,
        default="auto",
        help="auto: the journal when stderr is connected to it, else stderr (default: auto)",
    )
    parser.add_argument(
        "--log-level",
        choices=LEVELS,
        default=None,
        help="overrides settings.log_level of the rules file",
    )


def main(args: argparse.Namespace) -> int:
    """Load the rules, then run the daemon until it is stopped; returns the exit status.

    Raises:
        ConfigError: the rules are invalid (the CLI exits 3), before anything is watched.
        WatchError: a root cannot be watched (the CLI exits 1).
    """
    # A watchdog abort (SIGABRT) then leaves a traceback of where the loop was stuck.
    faulthandler.enable()
    # Inherited SIG_IGN for SIGCHLD (an ignored disposition survives execve(2)) makes the
    # kernel reap children at once: their exit status would be lost, and a pid the
    # daemon still signals could be another process's by then. See signal(7), wait(2).
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    path = config_path(args.config)
    ruleset = load_ruleset(path)
    setup_logging(args.log_target, args.log_level or ruleset.settings.log_level)
    # The pid, for `kill -HUP` (reload) from a terminal, where nothing else shows it.
    log.info(
        "starting with %s: %s (pid %d)", path, counted(len(ruleset.rules), "rule"), os.getpid()
    )
    daemon = _run(path, ruleset)
    del ruleset  # the daemon owns the rules: after a reload, nothing here keeps the first
    asyncio.run(daemon)
    return 0


async def _run(path: str, ruleset: RuleSet) -> None:
    # Imported here: the CLI imports every command to build its parser, and the daemon
    # brings aiohttp and ssl, which `fswatchd watch` and `check` do not need.
    from ..supervisor import Daemon  # noqa: PLC0415 (see above)

    # What is imported and loaded by now lives as long as the process: frozen out of the
    # collector's sight, a full collection walks only what comes later. Unfrozen, a burst
    # of queued jobs made one walk the whole heap: a 27-39 ms stall of the loop. Garbage
    # is collected first, or it would be frozen for good. The first rules are frozen too:
    # after a reload their reference counts free them, but a cycle among them would stay
    # (once, and bounded by their size).
    gc.collect()
    gc.freeze()
    # The daemon's stages bind to the running loop, so it is built inside it.
    daemon = Daemon(path, ruleset)
    del ruleset  # see main()
    await daemon.run()
