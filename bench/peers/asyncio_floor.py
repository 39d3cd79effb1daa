"""The asyncio floor for action latency: one inotify watch, one add_reader callback.

usage: asyncio_floor.py DIR STAMPS callback|spawn [PRODUCER]

For each IN_CLOSE_WRITE in DIR the callback either appends "<pid> <CLOCK_MONOTONIC ns>" to
STAMPS itself (callback: the least an asyncio program can do) or starts
``PRODUCER stamp STAMPS`` as a child (spawn: the least a daemon running an action can do).
Prints READY on stderr once the watch is in place. Stdlib only.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import struct
import sys
import time

__all__ = ["main"]

IN_CLOSE_WRITE = 0x00000008
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]


async def serve(directory: str, stamps: str, mode: str, producer: str) -> None:
    """Run the floor until cancelled."""
    fd = _libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
    if fd < 0 or _libc.inotify_add_watch(fd, os.fsencode(directory), IN_CLOSE_WRITE) < 0:
        raise OSError(ctypes.get_errno(), "inotify")
    loop = asyncio.get_running_loop()
    children: set[asyncio.Task[None]] = set()

    async def spawn() -> None:
        proc = await asyncio.create_subprocess_exec(producer, "stamp", stamps)
        await proc.wait()

    def on_readable() -> None:
        buf = os.read(fd, 65536)
        for _ in range(_count(buf)):
            if mode == "callback":
                with open(stamps, "a") as f:
                    f.write(f"{os.getpid()} {time.monotonic_ns()}\n")
            else:
                task = loop.create_task(spawn())
                children.add(task)
                task.add_done_callback(children.discard)

    loop.add_reader(fd, on_readable)
    sys.stderr.write("READY\n")
    sys.stderr.flush()
    await asyncio.Event().wait()


def _count(buf: bytes) -> int:
    n = pos = 0
    while pos < len(buf):
        pos += 16 + struct.unpack_from("iIII", buf, pos)[3]
        n += 1
    return n


def main() -> int:
    """Parse argv and serve."""
    directory, stamps, mode = sys.argv[1:4]
    producer = sys.argv[4] if len(sys.argv) > 4 else ""
    asyncio.run(serve(directory, stamps, mode, producer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
