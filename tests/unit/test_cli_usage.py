"""Usage errors name the subcommand they belong to."""

from __future__ import annotations

import pytest

from fswatchd import cli


@pytest.mark.parametrize(
    "argv", [["check"], ["log"], ["run"], ["watch", "."]], ids=lambda argv: argv[0]
)
def test_an_unknown_option_shows_the_subcommands_usage(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """1. ``fswatchd COMMAND --bogus`` (with what the command requires). 2. Exit 2
    (usage), and the message is the subcommand's usage and error, not the top level's
    ``COMMAND ...`` line."""
    command = argv[0]
    with pytest.raises(SystemExit) as info:
        cli.main([*argv, "--bogus"])
    assert info.value.code == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith(f"usage: fswatchd {command} ")
    assert f"fswatchd {command}: error: unrecognized arguments: --bogus" in err
