"""``fswatchd watch`` arguments: each refusal names what is wrong (docs/cli.md)."""

from __future__ import annotations

import argparse

import pytest

from fswatchd._inotify.flags import Mask
from fswatchd.commands.watch import add_arguments, parse_events


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("oneshot,create", "'oneshot' is not an event to watch for"),
        ("CREATE, IN_ISDIR", "'IN_ISDIR' is not an event to watch for"),
        ("q_overflow", "'q_overflow' is not an event to watch for"),
        (",", "',' names no event"),
        ("create,bogus", "unknown event name 'bogus'; valid: ACCESS, MODIFY, ATTRIB,"),
    ],
    ids=["watch-flag", "isdir-with-prefix", "overflow", "only-commas", "unknown"],
)
def test_refused_event_names_are_named(text: str, message: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as info:
        parse_events(text)
    assert str(info.value).startswith(message)


def test_the_names_offered_for_an_unknown_one_are_all_accepted() -> None:
    """Every name the refusal of an unknown name lists is one -e accepts (it once listed
    ONESHOT, ISDIR, Q_OVERFLOW ... and then refused them)."""
    with pytest.raises(argparse.ArgumentTypeError) as info:
        parse_events("bogus")
    offered = str(info.value).split("valid: ", 1)[1].split(", ")
    assert {"CREATE", "DELETE_SELF", "CLOSE", "MOVE", "ALL"} <= set(offered)
    for name in offered:
        assert parse_events(name)


def test_event_names_and_aliases() -> None:
    assert parse_events("close_write, IN_MOVE") == Mask.CLOSE_WRITE | Mask.MOVE


def test_an_empty_path_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """`fswatchd watch ''` would watch the current directory; it is refused (exit 2)."""
    parser = argparse.ArgumentParser(prog="fswatchd watch")
    add_arguments(parser)
    assert parser.parse_args(["."]).paths == ["."]
    with pytest.raises(SystemExit) as info:
        parser.parse_args([".", ""])
    assert info.value.code == 2
    assert "an empty PATH names nothing" in capsys.readouterr().err
