"""``fswatchd run`` end to end: a webhook rule POSTs to a real aiohttp server on 127.0.0.1.

The server (tests/fixtures_http.py) runs in the test's event loop; blocking waits on the
daemon (readiness, its exit) run in a thread so that the server keeps answering.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
from pathlib import Path

from daemon_support import WAIT, start_daemon
from fixtures_http import HookServer

__all__ = ["start_daemon"]

SECRET = b"s3cr3t key"


async def _requests(server: HookServer, count: int) -> None:
    async with asyncio.timeout(WAIT):
        while len(server.requests) < count:
            await asyncio.sleep(0.02)  # polls for an effect, with the deadline above


async def test_webhook_signed_body_retried_after_503(start_daemon, tmp_path: Path) -> None:
    """1. A webhook rule with secret_file (the file ends in a newline, which is not part
       of the key); the server answers 503 once, then 200.
    2. A file whose name is not UTF-8 and holds shell syntax is created.
    3. Two POSTs, attempts 1 and 2 of one delivery: each body has path (surrogate-escaped)
       and path_b64 (exact bytes), and a valid X-Fswatchd-Signature-256.
    4. The retry and the final success are logged, the name escaped on one line; no
       third request follows.
    """
    root = tmp_path / "in"
    root.mkdir()
    key = tmp_path / "hook.key"
    key.write_bytes(SECRET + b"\n")
    server = HookServer()
    url = await server.start()
    try:
        server.script(503, 200)
        hook = {"url": url, "secret_file": str(key), "timeout": 5, "retries": 3}
        rule = {"name": "hook", "watch": str(root), "actions": [{"webhook": hook}]}
        daemon = await asyncio.to_thread(start_daemon, {"rules": [rule]})
        name = b"\xff$(touch pwned)\n.csv"
        path = os.fsencode(root) + b"/" + name
        with open(path, "wb") as f:
            f.write(b"x")
        await _requests(server, 2)
        await asyncio.to_thread(
            daemon.wait_log,
            r"INFO fswatchd\[hook\]: webhook for .*/in/\\xff\$\(touch pwned\)\\x0a\.csv HTTP 200",
        )
        first, second = server.requests
        assert [r.headers["X-Fswatchd-Attempt"] for r in server.requests] == ["1", "2"]
        assert first.headers["X-Fswatchd-Delivery"] == second.headers["X-Fswatchd-Delivery"]
        for request in server.requests:
            assert request.method == "POST"
            assert request.headers["Content-Type"] == "application/json"
            expected = "sha256=" + hmac.new(SECRET, request.body, hashlib.sha256).hexdigest()
            assert hmac.compare_digest(request.headers["X-Fswatchd-Signature-256"], expected)
            body = json.loads(request.body)
            assert os.fsencode(body["path"]) == path
            assert base64.b64decode(body["path_b64"]) == path
            assert body["rule"] == "hook"
            assert body["id"] == request.headers["X-Fswatchd-Delivery"]
            assert body["mask"] == ["CLOSE_WRITE"]
            assert body["relpath"] == os.fsdecode(name)
        assert daemon.log_matches(r"WARNING .*webhook .*HTTP 503")
        assert not daemon.stray_lines()
        assert await asyncio.to_thread(daemon.stop) == 0
        assert len(server.requests) == 2
        assert not (tmp_path / "pwned").exists()
    finally:
        await server.close()
