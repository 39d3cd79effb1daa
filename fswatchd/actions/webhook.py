"""``webhook:`` actions: POST the event as JSON, signed, with retries, over one shared session.

One ``aiohttp.ClientSession`` per daemon (:func:`make_session`) keeps connections alive
across deliveries; every webhook action is given it. Each POST has its own total timeout;
failed attempts are retried per :mod:`fswatchd.actions.retry`, with the same body, the
same ``X-Fswatchd-Delivery`` id and an increasing ``X-Fswatchd-Attempt``.

TLS: certificates are verified against the system's CAs, plus a rule's ``ca_file`` when
given (that rule then uses its own SSL context, passed per request). Proxies come from the
environment (``HTTPS_PROXY``, ``HTTP_PROXY``, ``NO_PROXY``), looked up once per action
when it is built (:func:`env_proxy`), not per request: aiohttp's ``trust_env`` does that
lookup, and reads ~/.netrc, in a worker thread for every request, which cost more than the
POST itself (4,000 POSTs/s became about 1,300).
"""

from __future__ import annotations

import asyncio
import logging
import random as _random
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import aiohttp
import yarl
from aiohttp.helpers import get_env_proxy_for_url

from .. import __version__
from ..events import show_path
from .base import LOGGER_NAME, MESSAGE_ID_ACTION_RETRY, Job, Outcome, log_outcome
from .payload import SIGNATURE_HEADER, build_body, sign
from .retry import Verdict, backoff_delay, parse_retry_after, verdict

__all__ = ["USER_AGENT", "WebhookAction", "env_proxy", "make_session", "make_ssl_context"]

_log = logging.getLogger(LOGGER_NAME)

#: Sent as User-Agent unless a rule's headers set another.
USER_AGENT = f"fswatchd/{__version__}"
#: Most response body bytes read (and quoted in errors); a longer body closes the connection.
_RESPONSE_MAX = 64 * 1024
#: TLS failures are not transient: retrying cannot fix a certificate.
_FINAL_ERRORS = (aiohttp.ClientSSLError, aiohttp.InvalidURL)


def make_ssl_context(ca_file: str | None = None) -> ssl.SSLContext:
    """A verifying client context: the system's default CAs, plus ``ca_file`` if given.

    Args:
        ca_file: a PEM file of extra trusted CA certificates, or ``None``.
    Returns:
        an ``ssl.SSLContext`` (hostname checking and certificate verification on).
    Raises:
        ValueError: ``ca_file`` cannot be read or holds no certificate.
    """
    context = ssl.create_default_context()
    if ca_file is not None:
        try:
            context.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"cannot load CA certificates from {ca_file}: {exc}") from exc
    return context


def make_session(ca_file: str | None = None) -> aiohttp.ClientSession:
    """The daemon's one HTTP client session (keep-alive pool); call from inside the loop.

    Args:
        ca_file: extra trusted CAs for every webhook (PEM), or ``None``.
    Returns:
        an ``aiohttp.ClientSession`` that verifies certificates (:func:`make_ssl_context`)
        and keeps no cookies; the caller closes it at shutdown. Proxies are per action
        (:func:`env_proxy`).
    Raises:
        ValueError: see :func:`make_ssl_context`.
    """
    connector = aiohttp.TCPConnector(ssl=make_ssl_context(ca_file))
    # No cookie jar: every delivery stands alone, and a cookie one receiver sets must not
    # be sent again, to it or to another rule's webhook on the same host.
    return aiohttp.ClientSession(
        connector=connector,
        headers={"User-Agent": USER_AGENT},
        cookie_jar=aiohttp.DummyCookieJar(),
    )


def env_proxy(url: str) -> dict[str, Any]:
    """The proxy the environment names for ``url``, as ``session.post()`` keyword arguments.

    Args:
        url: the webhook URL.
    Returns:
        ``{"proxy": URL, "proxy_auth": BasicAuth | None}`` from ``HTTP_PROXY`` /
        ``HTTPS_PROXY`` (by the URL's scheme; credentials in the proxy URL or ~/.netrc),
        or ``{}`` when there is none or ``NO_PROXY`` exempts the host: the lookup
        aiohttp's ``trust_env`` makes, done once.
    """
    try:
        proxy, auth = get_env_proxy_for_url(yarl.URL(url))
    except LookupError:
        return {}
    return {"proxy": proxy, "proxy_auth": auth}


@dataclass(frozen=True, slots=True)
class _Attempt:
    """How one POST went: an HTTP status, or an error sentence."""

    status: int | None = None
    error: str | None = None
    timed_out: bool = False
    retry_after: str | None = None
    final: bool = False

    @property
    def retryable(self) -> bool:
        """A transient failure: connection error, timeout, 408, 429 or 5xx."""
        if self.status is None:
            return not self.final
        return verdict(self.status) is Verdict.RETRY


class WebhookAction:
    """A ``webhook:`` action: POST the job as JSON to ``url``, retrying transient failures.

    Args:
        url: an ``http://`` or ``https://`` URL.
        session: the daemon's session (:func:`make_session`).
        timeout: seconds for each attempt, connect to last byte.
        secret: HMAC key; when set, each POST carries ``X-Fswatchd-Signature-256``.
        headers: the rule's extra headers (they cannot replace Content-Type or the
            X-Fswatchd-* headers).
        retries: retries after the first attempt (attempts = retries + 1).
        backoff: first back-off ceiling, seconds; doubles per attempt.
        backoff_max: largest back-off and largest Retry-After honoured, seconds.
        ca_file: extra trusted CAs (PEM) for this rule only.
        sleep, random, clock: seams (``asyncio.sleep``, ``random.random``, ``time.time``).
    Raises:
        ValueError: a URL that is not http(s), a negative setting, an unreadable ca_file.

    ``run(job)`` returns an Outcome: ``ok`` on 2xx; ``http_status`` of the last answer;
    ``attempt`` = attempts used; ``timed_out`` if the last attempt timed out.
    """

    kind: ClassVar[str] = "webhook"

    def __init__(
        self,
        url: str,
        *,
        session: aiohttp.ClientSession,
        timeout: float,
        secret: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        retries: int = 5,
        backoff: float = 0.5,
        backoff_max: float = 30.0,
        ca_file: str | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        random: Callable[[], float] = _random.random,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """See the class docstring."""
        if yarl.URL(url).scheme not in ("http", "https"):
            raise ValueError(f"webhook URL must start with http:// or https:// (got {url!r})")
        if timeout <= 0 or retries < 0 or backoff < 0 or backoff_max < 0:
            raise ValueError("webhook timeout must be > 0; retries and backoffs >= 0")
        self.url = url
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.backoff_max = backoff_max
        self._session = session
        self._secret = secret
        self._headers = dict(headers or {})
        self._request_kwargs = env_proxy(url)
        if ca_file is not None:
            self._request_kwargs["ssl"] = make_ssl_context(ca_file)
        self._sleep = sleep
        self._random = random
        self._clock = clock

    async def run(self, job: Job) -> Outcome:
        """Deliver ``job``; retry per the policy; log and return the Outcome."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        body = build_body(job, now=self._clock())
        attempt = 0
        while True:
            attempt += 1
            result = await self._post(body, job, attempt)
            if not result.retryable or attempt > self.retries:
                break
            delay = self._delay(attempt, result)
            self._log_retry(job, attempt, result, delay)
            await self._sleep(delay)
        outcome = Outcome(
            rule=job.rule,
            action=self.kind,
            event_id=job.event_id,
            path=job.event.path,
            mask=job.event.mask,
            ok=result.status is not None and verdict(result.status) is Verdict.OK,
            http_status=result.status,
            duration=loop.time() - started,
            attempt=attempt,
            error=result.error,
            timed_out=result.timed_out,
        )
        log_outcome(outcome)
        return outcome

    def _headers_for(self, body: bytes, job: Job, attempt: int) -> dict[str, str]:
        """The rule's headers, then ours (which win)."""
        headers = {"User-Agent": USER_AGENT, **self._headers}
        headers["Content-Type"] = "application/json"
        headers["X-Fswatchd-Delivery"] = job.event_id
        headers["X-Fswatchd-Attempt"] = str(attempt)
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = sign(self._secret, body)
        return headers

    async def _post(self, body: bytes, job: Job, attempt: int) -> _Attempt:
        """One POST; every failure becomes an _Attempt, never an exception."""
        try:
            async with self._session.post(
                self.url,
                data=body,
                headers=self._headers_for(body, job, attempt),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                allow_redirects=False,
                **self._request_kwargs,
            ) as response:
                text = await _read_some(response)
                return _Attempt(
                    status=response.status,
                    error=_status_error(response, text),
                    retry_after=response.headers.get("Retry-After"),
                )
        except TimeoutError:
            return _Attempt(error=f"no answer within {self.timeout:g} s", timed_out=True)
        except _FINAL_ERRORS as exc:
            return _Attempt(error=f"{type(exc).__name__}: {exc}", final=True)
        except aiohttp.ClientError as exc:
            return _Attempt(error=f"{type(exc).__name__}: {exc}")

    def _delay(self, attempt: int, result: _Attempt) -> float:
        """Retry-After when the server sent one (capped), else full-jitter back-off."""
        asked = parse_retry_after(result.retry_after, now=self._clock())
        if asked is not None:
            return min(asked, self.backoff_max)
        return backoff_delay(attempt, base=self.backoff, cap=self.backoff_max, random=self._random)

    def _log_retry(self, job: Job, attempt: int, result: _Attempt, delay: float) -> None:
        """One WARNING per failed attempt that will be retried."""
        fields: dict[str, object] = {
            "MESSAGE_ID": MESSAGE_ID_ACTION_RETRY,
            "FSWATCHD_RULE": job.rule,
            "FSWATCHD_PATH": job.event.path or b"",
            "FSWATCHD_ACTION": self.kind,
            "FSWATCHD_EVENT_ID": job.event_id,
            "FSWATCHD_ATTEMPT": attempt,
        }
        if result.status is not None:
            fields["FSWATCHD_HTTP_STATUS"] = result.status
        _log.warning(
            "webhook attempt %d of %d failed (%s); retrying in %.1f s",
            attempt,
            self.retries + 1,
            result.error or f"HTTP {result.status}",
            delay,
            extra={"journal": fields},
        )


async def _read_some(response: aiohttp.ClientResponse) -> bytes:
    """Up to _RESPONSE_MAX bytes of the body; reading it lets the connection be reused."""
    chunks: list[bytes] = []
    size = 0
    while size < _RESPONSE_MAX and (chunk := await response.content.read(_RESPONSE_MAX - size)):
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _status_error(response: aiohttp.ClientResponse, body: bytes) -> str | None:
    """A sentence for a non-2xx answer, quoting the start of its body; None for 2xx."""
    status = response.status
    if verdict(status) is Verdict.OK:
        return None
    # Reason, Location and body come from the receiver: escaped, they cannot forge a log
    # record or drive the terminal of whoever reads the log.
    what = f"HTTP {status} {show_path(response.reason or '')}".rstrip()
    if 300 <= status < 400:
        location = show_path(response.headers.get("Location", "?"))
        return f"{what}: redirect to {location} not followed; configure the final URL"
    snippet = show_path(body[:200].strip())
    return f"{what}: {snippet}" if snippet else what
