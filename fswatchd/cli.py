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

#: subcommand name -> one-line help. Each is a module under fswatchd.commands providing
#: ``add_arguments(parser) -> None`` and ``main(args) -> int``; only the chosen one is
#: imported, so ``fswatchd watch`` does not pay for the daemon's or the rules' imports.
SUBCOMMANDS: dict[str, str] = {
    "watch": "print file events under each PATH, one per line, until interrupted",
    "check": "validate the rules and show what they would watch (exit 3 if invalid)",
    "log": "show action outcomes (and their output) from the journal",
    "run": "run the rules daemon in the foreground (SIGHUP reloads, SIGTERM stops)",
}


def _load(name: str) -> ModuleType:
    return importlib.import_module(f"fswatchd.commands.{name}")


def _chosen(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv``: its first word that is not an option."""
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The argparse parser; the options of the subcommand named in ``argv`` are registered.

    Args:
        argv: the arguments to be parsed (without the program name); only the subcommand
            they name is imported. Empty: every subcommand is listed, none imported.
    """
    parser = argparse.ArgumentParser(prog="fswatchd", description="Run rules on file events.")
    parser.add_argument("--version", action="version", version=f"fswatchd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = _chosen(argv)
    for name, text in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=text, description=text)
        if name == chosen:
            module = _load(name)
            module.add_arguments(p)
            p.set_defaults(_module=module, _parser=p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the subcommand, return the exit code.

    Raises:
        nothing: every ``FswatchdError`` becomes a one-line message on stderr and a code.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    args, unknown = build_parser(argv).parse_known_args(argv)
    if unknown:  # the subcommand's usage, not the top level's (argparse's parse_args)
        args._parser.error(f"unrecognized arguments: {' '.join(unknown)}")
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
