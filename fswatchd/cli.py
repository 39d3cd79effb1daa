"""The ``fswatchd`` command line: subcommands, and the only place that maps errors to exits.

Exit codes (documented in docs/cli.md): 0 clean stop; 1 runtime failure (including a watch
whose last root is gone); 2 usage error; 3 configuration invalid at start.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

from . import __version__
from .errors import ConfigError, FswatchdError

__all__ = ["EXIT_CONFIG", "EXIT_FAILURE", "EXIT_OK", "EXIT_USAGE", "main"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3

#: subcommand name -> module under fswatchd.commands. Each module provides
#: ``HELP: str``, ``add_arguments(parser) -> None`` and ``main(args) -> int``.
SUBCOMMANDS: dict[str, str] = {
    "watch": "watch",
    "check": "check",
    "log": "log",
    "run": "run",
}


def _load(name: str) -> ModuleType:
    return importlib.import_module(f"fswatchd.commands.{SUBCOMMANDS[name]}")


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser with every subcommand registered; returns it unparsed."""
    parser = argparse.ArgumentParser(prog="fswatchd", description="Run rules on file events.")
    parser.add_argument("--version", action="version", version=f"fswatchd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        module = _load(name)
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the subcommand, return the exit code.

    Raises:
        nothing: every ``FswatchdError`` becomes a one-line message on stderr and a code.
    """
    args = build_parser().parse_args(argv)
    try:
        code: int = args._module.main(args)
    except ConfigError as exc:
        print(f"fswatchd: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except FswatchdError as exc:
        print(f"fswatchd: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_OK
    return code
