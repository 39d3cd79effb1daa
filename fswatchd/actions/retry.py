"""The webhook retry policy: which answers are retried, and how long to wait before the next.

Retried: connection errors and timeouts, 408 Request Timeout, 429 Too Many Requests and
every 5xx. Final: any other 4xx, and 3xx (redirects are not followed: a POST redirected is
a misconfigured URL, and following it could re-send the body elsewhere). 2xx is success.

The wait is exponential back-off with "full jitter" (a uniform draw between 0 and
``min(cap, base * 2**(attempt-1))``), which spreads retries of many deliveries apart. A
``Retry-After`` header (RFC 9110 section 10.2.3: delay-seconds or an HTTP-date) on a
retried answer replaces the draw, capped at the same maximum.
"""

from __future__ import annotations

import datetime
import email.utils
from collections.abc import Callable
from enum import Enum

__all__ = ["Verdict", "backoff_delay", "parse_retry_after", "verdict"]


class Verdict(Enum):
    """What an HTTP status means for the delivery."""

    OK = "ok"
    RETRY = "retry"
    FINAL = "final"


def verdict(status: int) -> Verdict:
    """Classify an HTTP status: 2xx OK; 408, 429, 5xx RETRY; anything else FINAL."""
    if 200 <= status < 300:
        return Verdict.OK
    if status in (408, 429) or 500 <= status < 600:
        return Verdict.RETRY
    return Verdict.FINAL


def backoff_delay(attempt: int, *, base: float, cap: float, random: Callable[[], float]) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based), full jitter.

    Args:
        attempt: the attempt that just failed, >= 1.
        base: the first ceiling, seconds.
        cap: the largest ceiling, seconds.
        random: returns a float in [0, 1) (``random.random``; a seam for tests).
    Returns:
        a delay in [0, min(cap, base * 2**(attempt - 1))).
    """
    ceiling = min(cap, base * 2.0 ** min(attempt - 1, 64))
    return ceiling * random()


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """The delay a ``Retry-After`` header asks for, in seconds (>= 0).

    Args:
        value: the header value: delay-seconds (``"120"``) or an HTTP-date
            (``"Wed, 21 Oct 2015 07:28:00 GMT"``); ``None`` when absent.
        now: the current time, seconds since the epoch (for an HTTP-date).
    Returns:
        the delay in seconds, 0 for a date in the past; ``None`` when absent or unparsable.
    """
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # a "-0000" zone; RFC 9110 dates are always GMT anyway
        when = when.replace(tzinfo=datetime.UTC)
    return max(0.0, when.timestamp() - now)
