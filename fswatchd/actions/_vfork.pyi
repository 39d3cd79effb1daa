"""Types of the C helper fswatchd/actions/_vfork.c (see its docstring)."""

from collections.abc import Sequence

def spawn(
    path: bytes,
    argv: Sequence[bytes],
    env: dict[bytes, bytes],
    fds: tuple[int, int, int],
    reset_signals: Sequence[int],
    /,
) -> tuple[int, int]: ...
