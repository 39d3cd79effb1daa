"""webhook: actions against a real aiohttp server on 127.0.0.1: body, signature, retries, TLS.

The back-off sleep is a seam: tests record the delays asked for instead of waiting them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import socket
import ssl
from collections.abc import AsyncIterator
from email.utils import formatdate
from pathlib import Path

import aiohttp
import pytest
import trustme
from fixtures_http import STALL, Answer, HookServer

from fswatchd.actions import Job
from fswatchd.actions.base import (
    MESSAGE_ID_ACTION_FAILED,
    MESSAGE_ID_ACTION_OK,
    MESSAGE_ID_ACTION_RETRY,
)
from fswatchd.actions.webhook import USER_AGENT, WebhookAction, make_session
from fswatchd.events import FsEvent, Mask

NOW = 1_700_000_000.0


class Sleeps:
    """The sleep seam: records each delay and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture
async def server() -> AsyncIterator[HookServer]:
    hooks = HookServer()
    await hooks.start()
    yield hooks
    await hooks.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    client = make_session()
    yield client
    await client.close()


def make_job(
    path: bytes = b"/w/a.txt",
    *,
    src_path: bytes | None = None,
    paths: tuple[bytes, ...] = (),
    merged: int = 1,
) -> Job:
    event = FsEvent(path, int(Mask.MOVED_TO), src_path=src_path, root=b"/w")
    return Job("hook-rule", "0190-abc", event, b"/w", path[3:], paths=paths, merged=merged)


def action(url: str, session: aiohttp.ClientSession, sleeps: Sleeps, **kw: object) -> WebhookAction:
    options: dict[str, object] = {"timeout": 5.0, "retries": 3, "backoff": 0.5}
    options.update(kw)
    return WebhookAction(
        url, session=session, sleep=sleeps, random=lambda: 0.5, clock=lambda: NOW, **options
    )  # type: ignore[arg-type]


async def test_body_headers_and_signature(
    server: HookServer, session: aiohttp.ClientSession
) -> None:
    """1. One POST with the documented JSON body, Content-Type and X-Fswatchd-* headers.
    2. The signature is the hex HMAC-SHA256 of the exact body bytes with the secret.
    3. The rule's headers are sent, but cannot replace Content-Type.
    """
    secret = b"s3cret"
    hook = action(
        server.url,
        session,
        Sleeps(),
        secret=secret,
        headers={"Authorization": "Bearer t", "Content-Type": "text/plain"},
    )
    outcome = await hook.run(make_job(src_path=b"/w/old.txt"))
    assert outcome.ok and outcome.http_status == 200 and outcome.attempt == 1
    [request] = server.requests
    assert request.method == "POST" and request.path == "/hook"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"] == "Bearer t"
    assert request.headers["User-Agent"] == USER_AGENT
    assert request.headers["X-Fswatchd-Delivery"] == "0190-abc"
    assert request.headers["X-Fswatchd-Attempt"] == "1"
    expected = "sha256=" + hmac.new(secret, request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request.headers["X-Fswatchd-Signature-256"], expected)
    assert json.loads(request.body) == {
        "id": "0190-abc",
        "rule": "hook-rule",
        "path": "/w/a.txt",
        "path_b64": base64.b64encode(b"/w/a.txt").decode(),
        "src_path": "/w/old.txt",
        "src_path_b64": base64.b64encode(b"/w/old.txt").decode(),
        "mask": ["MOVED_TO"],
        "is_dir": False,
        "synthetic": False,
        "root": "/w",
        "relpath": "a.txt",
        "time": "2023-11-14T22:13:20.000000Z",
        "merged": 1,
    }


async def test_no_signature_without_a_secret(
    server: HookServer, session: aiohttp.ClientSession
) -> None:
    assert (await action(server.url, session, Sleeps()).run(make_job())).ok
    assert "X-Fswatchd-Signature-256" not in server.requests[0].headers


async def test_non_utf8_path_round_trips(
    server: HookServer, session: aiohttp.ClientSession
) -> None:
    """A name with bytes 0xff 0xfe and a newline: exact via path_b64 and via os.fsencode."""
    path = b"/w/\xff\xfe caf\xc3\xa9\n$(x)"
    assert (await action(server.url, session, Sleeps()).run(make_job(path))).ok
    raw = server.requests[0].body
    assert raw.isascii()  # ensure_ascii: \\udcff escapes for the raw bytes
    body = json.loads(raw)
    assert base64.b64decode(body["path_b64"]) == path
    assert os.fsencode(body["path"]) == path
    assert body["src_path"] is None and "src_path_b64" not in body


async def test_batch_paths(server: HookServer, session: aiohttp.ClientSession) -> None:
    paths = (b"/w/a", b"/w/\x80b")
    job = make_job(b"/w/\x80b", paths=paths, merged=2)
    assert (await action(server.url, session, Sleeps()).run(job)).ok
    body = json.loads(server.requests[0].body)
    assert [base64.b64decode(p) for p in body["paths_b64"]] == list(paths)
    assert [os.fsencode(p) for p in body["paths"]] == list(paths)
    assert body["merged"] == 2


async def test_503_is_retried_with_the_same_delivery(
    server: HookServer, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    """1. 503, then 200: two attempts, one back-off sleep of the jittered size.
    2. Both POSTs carry the same body and delivery id; the attempt header counts.
    3. The retry is logged at WARNING with the HTTP status and attempt fields.
    """
    caplog.set_level(logging.INFO, logger="fswatchd.actions")
    server.script(503, 200)
    sleeps = Sleeps()
    outcome = await action(server.url, session, sleeps).run(make_job())
    assert outcome.ok and outcome.attempt == 2 and outcome.http_status == 200
    assert sleeps.delays == [0.25]  # backoff 0.5 * 2**0 * random 0.5
    first, second = server.requests
    assert first.body == second.body
    assert first.headers["X-Fswatchd-Delivery"] == second.headers["X-Fswatchd-Delivery"]
    assert (first.headers["X-Fswatchd-Attempt"], second.headers["X-Fswatchd-Attempt"]) == ("1", "2")
    [retry] = [r for r in caplog.records if r.journal.get("MESSAGE_ID") == MESSAGE_ID_ACTION_RETRY]  # type: ignore[attr-defined]
    assert retry.levelno == logging.WARNING
    assert retry.journal["FSWATCHD_HTTP_STATUS"] == 503  # type: ignore[attr-defined]
    assert retry.journal["FSWATCHD_ATTEMPT"] == 1  # type: ignore[attr-defined]
    [done] = [r for r in caplog.records if r.journal.get("MESSAGE_ID") == MESSAGE_ID_ACTION_OK]  # type: ignore[attr-defined]
    assert done.journal["FSWATCHD_ATTEMPT"] == 2  # type: ignore[attr-defined]


async def test_backoff_grows_and_gives_up(
    server: HookServer, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    """Always 500: retries+1 attempts, ceilings doubling to the cap, then a failed outcome."""
    caplog.set_level(logging.INFO, logger="fswatchd.actions")
    server.script(*[Answer(500, body=b"database down")] * 5)
    sleeps = Sleeps()
    hook = action(server.url, session, sleeps, retries=4, backoff=1.0, backoff_max=3.0)
    outcome = await hook.run(make_job())
    assert not outcome.ok and outcome.attempt == 5 and outcome.http_status == 500
    assert outcome.error == "HTTP 500 Internal Server Error: database down"
    assert sleeps.delays == [0.5, 1.0, 1.5, 1.5]
    assert len(server.requests) == 5
    [done] = [r for r in caplog.records if r.journal.get("MESSAGE_ID") == MESSAGE_ID_ACTION_FAILED]  # type: ignore[attr-defined]
    assert done.levelno == logging.WARNING


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [("1", 1.0), (formatdate(NOW + 4, usegmt=True), 4.0), ("100", 5.0)],
    ids=["seconds", "http-date", "capped"],
)
async def test_429_honours_retry_after(
    server: HookServer, session: aiohttp.ClientSession, retry_after: str, expected: float
) -> None:
    server.script(Answer(429, {"Retry-After": retry_after}), 200)
    sleeps = Sleeps()
    outcome = await action(server.url, session, sleeps, backoff_max=5.0).run(make_job())
    assert outcome.ok and outcome.attempt == 2
    assert sleeps.delays == [expected]


@pytest.mark.parametrize("status", [400, 404, 410])
async def test_other_4xx_is_final(
    server: HookServer, session: aiohttp.ClientSession, status: int
) -> None:
    server.script(Answer(status, body=b"no such hook"))
    sleeps = Sleeps()
    outcome = await action(server.url, session, sleeps).run(make_job())
    assert not outcome.ok and outcome.attempt == 1 and outcome.http_status == status
    assert outcome.error is not None and outcome.error.endswith(": no such hook")
    assert sleeps.delays == [] and len(server.requests) == 1


async def test_redirect_is_a_final_failure_not_followed(
    server: HookServer, session: aiohttp.ClientSession
) -> None:
    server.script(Answer(307, {"Location": server.url + "/elsewhere"}))
    outcome = await action(server.url, session, Sleeps()).run(make_job())
    assert not outcome.ok and outcome.http_status == 307 and outcome.attempt == 1
    assert outcome.error is not None and "not followed" in outcome.error
    assert [r.path for r in server.requests] == ["/hook"]


async def test_a_stalled_receiver_times_out_then_recovers(
    server: HookServer, session: aiohttp.ClientSession
) -> None:
    server.script(STALL, 200)
    sleeps = Sleeps()
    # Long enough that the second attempt, which is answered, never times out too.
    outcome = await action(server.url, session, sleeps, timeout=2).run(make_job())
    assert outcome.ok and outcome.attempt == 2 and not outcome.timed_out
    assert len(sleeps.delays) == 1


async def test_a_stalled_receiver_to_the_end_is_a_timed_out_outcome(
    server: HookServer, session: aiohttp.ClientSession
) -> None:
    server.script(STALL, STALL)
    outcome = await action(server.url, session, Sleeps(), timeout=0.3, retries=1).run(make_job())
    assert not outcome.ok and outcome.timed_out and outcome.attempt == 2
    assert outcome.http_status is None


async def test_connection_refused_is_retried_then_fails(session: aiohttp.ClientSession) -> None:
    # A bound socket that does not listen refuses connections, and holds the port
    # so that nothing else can take it meanwhile.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sleeps = Sleeps()
        hook = action(f"http://127.0.0.1:{port}/hook", session, sleeps, retries=2)
        outcome = await hook.run(make_job())
    assert not outcome.ok and outcome.attempt == 3 and outcome.http_status is None
    assert outcome.error is not None and "ClientConnectorError" in outcome.error
    assert len(sleeps.delays) == 2


async def test_keep_alive_reuses_one_connection(
    server: HookServer, session: aiohttp.ClientSession
) -> None:
    hook = action(server.url, session, Sleeps())
    for _ in range(5):
        assert (await hook.run(make_job())).ok
    assert len(server.requests) == 5
    assert len(server.connections) == 1


@pytest.fixture
def named_url(server: HookServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """A hook URL with a host name (aiohttp keeps no cookie from an IP address) that needs
    no resolver: the test server is also the HTTP proxy (HTTP_PROXY, read when each
    action is built), and a plain-HTTP request through a proxy names its target in the
    request line only."""
    for name in ("NO_PROXY", "no_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", server.url.removesuffix("/hook"))
    return "http://receiver.test/hook"


async def test_a_receivers_cookie_is_never_sent_back(
    server: HookServer, session: aiohttp.ClientSession, named_url: str
) -> None:
    """1. A receiver answers the first POST with Set-Cookie. 2. Two more POSTs through the
    daemon's session, the second to another path as another rule's webhook would be:
    neither carries a Cookie header. Each delivery stands alone; one receiver's cookie
    must not reach it again, nor another webhook on the same host."""
    server.script(Answer(200, headers={"Set-Cookie": "session=s3cret; Path=/"}))
    other = named_url.replace("/hook", "/other-rule")
    for url in (named_url, named_url, other):
        assert (await action(url, session, Sleeps()).run(make_job())).ok
    assert [r.path for r in server.requests] == ["/hook", "/hook", "/other-rule"]
    assert [r.headers.get("Cookie") for r in server.requests] == [None, None, None]


async def test_a_rules_cookie_header_is_sent_as_written(
    server: HookServer, session: aiohttp.ClientSession, named_url: str
) -> None:
    """A rule's own ``Cookie`` header, after a receiver set a cookie of its own, arrives
    byte for byte: not re-parsed, merged or reordered with a stored cookie."""
    server.script(Answer(200, headers={"Set-Cookie": "session=s3cret; Path=/"}))
    assert (await action(named_url, session, Sleeps()).run(make_job())).ok
    written = 'tok=x y; other="q"'
    hook = action(named_url, session, Sleeps(), headers={"Cookie": written})
    assert (await hook.run(make_job())).ok
    assert server.requests[1].headers.get("Cookie") == written


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def tls_server(ca: trustme.CA) -> AsyncIterator[HookServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    hooks = HookServer()
    await hooks.start(ssl_context=context)
    yield hooks
    await hooks.close()


async def test_https_with_the_rules_ca_file(
    tls_server: HookServer, session: aiohttp.ClientSession, ca: trustme.CA, tmp_path: Path
) -> None:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    hook = action(tls_server.url, session, Sleeps(), ca_file=str(ca_file))
    outcome = await hook.run(make_job())
    assert outcome.ok, outcome
    assert len(tls_server.requests) == 1


async def test_https_with_the_sessions_ca_file(
    tls_server: HookServer, ca: trustme.CA, tmp_path: Path
) -> None:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    client = make_session(str(ca_file))
    try:
        assert (await action(tls_server.url, client, Sleeps()).run(make_job())).ok
    finally:
        await client.close()


async def test_https_without_the_ca_fails_verification_once(
    tls_server: HookServer, session: aiohttp.ClientSession
) -> None:
    sleeps = Sleeps()
    outcome = await action(tls_server.url, session, sleeps).run(make_job())
    assert not outcome.ok and outcome.attempt == 1 and sleeps.delays == []
    assert outcome.error is not None and "certificate" in outcome.error.lower()
    assert tls_server.requests == []


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="http:// or https://"):
        WebhookAction("ftp://x/", session=None, timeout=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cannot load CA"):
        WebhookAction("https://x/", session=None, timeout=1, ca_file="/nonexistent")  # type: ignore[arg-type]
