"""The webhook receiver: counts POSTs on 127.0.0.1, one stdout line per request.

usage: receiver.py

Binds an ephemeral port, prints "READY <port>" on stderr, then answers every POST with
204 and writes "<CLOCK_MONOTONIC ns> <client port> <body's path>" to stdout (flushed), so
the harness counts deliveries, knows when the last one arrived, checks that every file
had its own POST, and counts the connections used (keep-alive).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from aiohttp import web

__all__ = ["main"]


async def handle(request: web.Request) -> web.Response:
    """Read the body, note the time, answer 204."""
    body = await request.read()
    now = time.monotonic_ns()
    peer = request.transport.get_extra_info("peername") if request.transport else None
    path = json.loads(body).get("path")
    sys.stdout.write(f"{now} {peer[1] if peer else 0} {path}\n")
    sys.stdout.flush()
    return web.Response(status=204)


async def serve() -> None:
    """Serve until cancelled."""
    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    sys.stderr.write(f"READY {port}\n")
    sys.stderr.flush()
    await asyncio.Event().wait()


def main() -> int:
    """Serve until killed."""
    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
