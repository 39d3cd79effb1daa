"""A real HTTP server on 127.0.0.1 for webhook tests: it records, fails, stalls, recovers on cue.

Use it as an async context manager or through a fixture:

    server = HookServer()
    url = await server.start()          # http://127.0.0.1:<port>/hook
    server.script(503, 200)             # the next answers, in order; then 200s
    ...
    await server.close()

Each recorded request keeps its method, path, headers, exact body and the client's port
(one port per TCP connection, so ``len(server.connections)`` counts connections).
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from dataclasses import dataclass, field

from aiohttp import web

__all__ = ["STALL", "Answer", "HookServer", "Recorded"]

#: A scripted answer that never comes (until the server closes): a stalled receiver.
STALL = -1


@dataclass(frozen=True)
class Answer:
    """One scripted answer: a status with headers and body, or STALL."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True)
class Recorded:
    """One request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int


class HookServer:
    """An aiohttp.web server on an ephemeral 127.0.0.1 port, optionally with TLS."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._answers: deque[Answer] = deque()
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    def script(self, *answers: int | Answer) -> None:
        """Queue the next answers (a bare int is a status); after them, 200."""
        self._answers.extend(a if isinstance(a, Answer) else Answer(a) for a in answers)

    @property
    def connections(self) -> set[int]:
        """The client ports seen: one per TCP connection."""
        return {r.client_port for r in self.requests}

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.requests.append(
            Recorded(
                request.method,
                request.path,
                dict(request.headers),
                await request.read(),
                peer[1] if peer else 0,
            )
        )
        answer = self._answers.popleft() if self._answers else Answer(200)
        if answer.status == STALL:
            await self._release.wait()
            return web.Response(status=599)
        return web.Response(status=answer.status, headers=answer.headers, body=answer.body)

    async def start(
        self, ssl_context: ssl.SSLContext | None = None, host: str = "127.0.0.1"
    ) -> str:
        """Listen on an ephemeral port; return the hook URL."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, 0, ssl_context=ssl_context)
        await site.start()
        port = self._runner.addresses[0][1]
        scheme = "https" if ssl_context else "http"
        self.url = f"{scheme}://{host}:{port}/hook"
        return self.url

    async def close(self) -> None:
        """Release stalled handlers and stop listening."""
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()
