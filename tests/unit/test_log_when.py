"""``fswatchd log --since/--until`` time forms (a subset of systemd.time(7))."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from fswatchd.commands._when import parse_span, parse_when

NOW = datetime(2026, 11, 29, 15, 30, 45, 123456).astimezone()
MIDNIGHT = NOW.replace(hour=0, minute=0, second=0, microsecond=0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("today", MIDNIGHT),
        ("yesterday", MIDNIGHT - timedelta(days=1)),
        ("tomorrow", MIDNIGHT + timedelta(days=1)),
        ("2026-11-28 10:00", datetime(2026, 11, 28, 10, 0).astimezone()),
        ("2026-11-28 10:00:30", datetime(2026, 11, 28, 10, 0, 30).astimezone()),
        ("2026-11-28T10:00", datetime(2026, 11, 28, 10, 0).astimezone()),
        ("2026-11-28", datetime(2026, 11, 28).astimezone()),
        ("10:00", NOW.replace(hour=10, minute=0, second=0, microsecond=0)),
        ("10:00:05", NOW.replace(hour=10, minute=0, second=5, microsecond=0)),
        ("-1h", NOW - timedelta(hours=1)),
        ("+30min", NOW + timedelta(minutes=30)),
        ("1h ago", NOW - timedelta(hours=1)),
        ("2 hours ago", NOW - timedelta(hours=2)),
        ("1h30min ago", NOW - timedelta(minutes=90)),
        ("-1d 2h", NOW - timedelta(hours=26)),
        ("  Yesterday ", MIDNIGHT - timedelta(days=1)),
    ],
    ids=str,
)
def test_accepted_forms(text: str, expected: datetime) -> None:
    assert parse_when(text, NOW) == expected


def test_epoch_seconds() -> None:
    assert parse_when("@1795942990.5", NOW).timestamp() == 1795942990.5


@pytest.mark.parametrize("text", ["", "soon", "1 fortnight ago", "2026-13-01", "-h", "monday"])
def test_rejected_forms_name_the_accepted_ones(text: str) -> None:
    with pytest.raises(ValueError, match="1h ago"):
        parse_when(text, NOW)


def test_span_units() -> None:
    assert parse_span("1w2d3h4m5s6ms") == timedelta(
        weeks=1, days=2, hours=3, minutes=4, seconds=5, milliseconds=6
    )
