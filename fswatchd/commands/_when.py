"""Parse the ``--since``/``--until`` time forms that journalctl also accepts (systemd.time(7)).

Supported, in local time:

* ``2026-11-29 10:00``, ``2026-11-29 10:00:30``, ``2026-11-29`` (midnight), ``2026-11-29T10:00``
* ``10:00``, ``10:00:30`` (today)
* ``now``, ``today``, ``yesterday``, ``tomorrow`` (midnight)
* ``@1795942990`` (seconds since the epoch)
* ``-1h``, ``+30min``, ``1h ago``, ``2 hours ago``, ``1h30min ago``, ``-1d 2h``
  (units: us, ms, s/sec/second(s), m/min/minute(s), h/hr/hour(s), d/day(s), w/week(s))

journalctl accepts more (weekday names, months and years as spans, time zones); those
are rejected here with a ValueError rather than guessed.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

__all__ = ["parse_span", "parse_when"]

_UNITS: dict[str, float] = {}
for _names, _seconds in (
    (("us", "usec", "µs"), 1e-6),
    (("ms", "msec"), 1e-3),
    (("s", "sec", "secs", "second", "seconds"), 1.0),
    (("m", "min", "mins", "minute", "minutes"), 60.0),
    (("h", "hr", "hrs", "hour", "hours"), 3600.0),
    (("d", "day", "days"), 86400.0),
    (("w", "week", "weeks"), 7 * 86400.0),
):
    for _name in _names:
        _UNITS[_name] = _seconds

_SPAN_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zµ]+)\s*")
_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d",
)
_FORMS = "'2026-11-29 10:00[:SS]', '10:00', 'today', 'yesterday', 'now', '@EPOCH', '-1h', '1h ago'"


def parse_span(text: str) -> timedelta:
    """``"1h30min"`` / ``"2 hours"`` → timedelta. Raises ValueError on anything else."""
    total, pos = 0.0, 0
    while pos < len(text):
        m = _SPAN_PART.match(text, pos)
        if m is None or m.group(2) not in _UNITS:
            raise ValueError(f"not a time span: {text!r}")
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos == 0:
        raise ValueError(f"not a time span: {text!r}")
    return timedelta(seconds=total)


def _relative(text: str, now: datetime) -> datetime | None:
    if text.endswith(" ago"):
        return now - parse_span(text[: -len(" ago")])
    if text[:1] in "+-":
        span = parse_span(text[1:])
        return now + span if text[0] == "+" else now - span
    return None


def _named(text: str, now: datetime) -> datetime | None:
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    days = {"today": 0, "yesterday": -1, "tomorrow": 1}
    if text == "now":
        return now
    if text in days:
        return midnight + timedelta(days=days[text])
    if text.startswith("@"):
        return datetime.fromtimestamp(float(text[1:])).astimezone()
    return None


def _absolute(text: str, now: datetime) -> datetime | None:
    for fmt in _FORMATS:
        try:
            return datetime.strptime(text, fmt).astimezone()
        except ValueError:
            continue
    for fmt in ("%H:%M:%S", "%H:%M"):
        try:
            t = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return now.replace(hour=t.hour, minute=t.minute, second=t.second, microsecond=0)
    return None


def parse_when(text: str, now: datetime | None = None) -> datetime:
    """A point in time from one of the forms in the module docstring.

    Args:
        text: the user's words, e.g. ``"1h ago"``; surrounding space is ignored.
        now: the reference for relative forms, timezone-aware (default: the current
            local time).
    Returns:
        a timezone-aware datetime.
    Raises:
        ValueError: naming the accepted forms.
    """
    ref = datetime.now().astimezone() if now is None else now
    words = " ".join(text.strip().lower().split())
    try:
        for parse in (_named, _relative, _absolute):
            found = parse(words, ref)
            if found is not None:
                return found
    except (ValueError, OverflowError, OSError):
        pass
    raise ValueError(f"cannot read time {text!r}: use e.g. {_FORMS}")
