"""Wording shared by log lines, STATUS= and ``fswatchd check``: a count with its noun."""

from __future__ import annotations

__all__ = ["counted"]


def counted(n: int, one: str, many: str | None = None) -> str:
    """``n`` and the noun that agrees with it: ``counted(1, "rule")`` is ``"1 rule"``,
    ``counted(2, "directory", "directories")`` is ``"2 directories"``.

    Args:
        n: the count.
        one: the singular noun.
        many: the plural noun (default: ``one`` + ``"s"``).
    Returns:
        ``"<n> <noun>"``.
    """
    return f"{n} {one if n == 1 else many or one + 's'}"
