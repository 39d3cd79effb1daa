"""The webhook floor: one aiohttp session posting N small JSON bodies, CONCURRENCY at a time.

usage: aiohttp_floor.py URL N CONCURRENCY

Prints its start time "<CLOCK_MONOTONIC ns>" on stdout just before the first POST; the
receiver's stamp of the last POST ends the measurement.
"""

from __future__ import annotations

import asyncio
import sys
import time

import aiohttp

__all__ = ["main"]


async def post_all(url: str, n: int, concurrency: int) -> None:
    """POST n bodies, at most ``concurrency`` in flight."""
    limit = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession() as session:

        async def one(i: int) -> None:
            async with limit:
                body = {"path": f"/bench/f{i:07d}", "mask": ["CLOSE_WRITE"]}
                async with session.post(url, json=body) as resp:
                    await resp.read()

        sys.stdout.write(f"{time.monotonic_ns()}\n")
        sys.stdout.flush()
        await asyncio.gather(*(one(i) for i in range(n)))


def main() -> int:
    """Parse argv and post."""
    asyncio.run(post_all(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
