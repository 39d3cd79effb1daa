"""Types of the C helper fswatchd/actions/_clone.c (see its docstring)."""

from collections.abc import Sequence
from typing import final

#: 1 where the child runs while the caller goes on (x86_64, aarch64), 0 where the caller
#: is suspended until the child's execve (CLONE_VFORK).
CONCURRENT: int

@final
class Start:
    """A started child's hold on the memory it reads until its execve(2)."""

    @property
    def released(self) -> bool: ...
    @property
    def error(self) -> int | None: ...

def spawn(
    path: bytes,
    argv: Sequence[bytes],
    env: dict[bytes, bytes],
    fds: tuple[int, int, int],
    reset_signals: Sequence[int],
    /,
) -> tuple[int, int, Start]: ...
