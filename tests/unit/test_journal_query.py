"""``fswatchd log`` reading the journal: what it says when it finds nothing."""

from __future__ import annotations

import pytest

from fswatchd.commands._journal_query import _where


@pytest.mark.parametrize(
    ("directory", "euid", "hint"),
    [
        ("/j", 0, "in /j"),
        (None, 0, "(no journal on this machine: is systemd-journald running?)"),
        (None, 1000, "(are you root or in group systemd-journal?)"),
    ],
    ids=["directory", "root", "user"],
)
def test_no_entries_says_why_for_whom(directory: str | None, euid: int, hint: str) -> None:
    """Nothing readable: a directory is named; root is not asked whether it is root."""
    assert _where(directory, euid) == hint
