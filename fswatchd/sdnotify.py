"""sd_notify(3): tell the service manager about readiness, reloads, status and liveness.

Uses systemd-python's ``systemd.daemon.notify`` when it is installed; otherwise sends the
one datagram the protocol consists of. A no-op (returning False) when ``NOTIFY_SOCKET`` is
unset, so the daemon runs unchanged outside systemd.

The watchdog (``WatchdogSec=`` in the unit, sd_watchdog_enabled(3)) is fed by
``watchdog_loop``, which sends ``WATCHDOG=1`` only while every probe reports progress: the
loop itself running proves the event loop ticks, and each component proves it is not
wedged through a ``Heartbeat``. An idle component (nothing to do) is healthy, so an idle
daemon is never killed.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import ModuleType

__all__ = [
    "Heartbeat",
    "Probe",
    "Watchdog",
    "notify",
    "ready",
    "reloading",
    "status",
    "stopping",
    "watchdog_loop",
]

log = logging.getLogger(__name__)

_sd_daemon: ModuleType | None
try:  # the optional extra `systemd`; import_module: the repo's unit dir is also systemd/
    _sd_daemon = importlib.import_module("systemd.daemon")
except ImportError:  # pragma: no cover - depends on the environment
    _sd_daemon = None

#: STATUS= is shown by ``systemctl status`` on one line; longer text only gets cut there.
STATUS_MAX = 200


def _send_datagram(address: str, payload: bytes) -> None:
    # An address starting with "@" names a socket in the abstract namespace (sd_notify(3)).
    target = "\0" + address[1:] if address.startswith("@") else address
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.sendto(payload, target)


def notify(*assignments: str) -> bool:
    """Send ``assignments`` (e.g. ``"READY=1"``, ``"STATUS=watching 3 roots"``) in one message.

    Args:
        assignments: ``KEY=VALUE`` strings, joined with newlines as sd_notify(3) specifies.
    Returns:
        True if a message was sent, False if ``NOTIFY_SOCKET`` is unset or sending failed.
    Raises:
        nothing: a failure to reach the socket is logged at WARNING; readiness reporting
        must never take the daemon down. (systemd-python raises FileNotFoundError for a
        socket path that does not exist; that is an OSError and caught here.)
    """
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    message = "\n".join(assignments)
    try:
        if _sd_daemon is not None:
            return bool(_sd_daemon.notify(message))
        _send_datagram(address, message.encode())
    except OSError as exc:
        log.warning("sd_notify to %s failed: %s", address, exc)
        return False
    return True


def _one_line(text: str) -> str:
    # STATUS= ends at the newline (the next line would be parsed as another assignment).
    line = " ".join(text.split())
    return line if len(line) <= STATUS_MAX else line[: STATUS_MAX - 1] + "…"


def status(text: str) -> bool:
    """Send ``STATUS=<text>`` (shown by ``systemctl status``); whitespace is folded to one
    line of at most ``STATUS_MAX`` characters. Returns what ``notify`` returns."""
    return notify(f"STATUS={_one_line(text)}")


def ready(status_text: str | None = None) -> bool:
    """Send ``READY=1`` (start-up or a reload finished), with ``STATUS=`` when given.

    Returns what ``notify`` returns. sd_notify(3): for Type=notify units ``systemctl start``
    returns, and a ``reloading`` state ends, when this arrives.
    """
    extra = [f"STATUS={_one_line(status_text)}"] if status_text is not None else []
    return notify("READY=1", *extra)


def monotonic_usec() -> int:
    """CLOCK_MONOTONIC in microseconds (int), the clock sd_notify(3) MONOTONIC_USEC= uses."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def reloading(status_text: str | None = "reloading configuration") -> bool:
    """Send ``RELOADING=1`` with ``MONOTONIC_USEC=`` (and ``STATUS=`` unless None).

    sd_notify(3) requires MONOTONIC_USEC with RELOADING=1 for Type=notify-reload units
    (systemd >= 253: without it ``systemctl reload`` hangs); systemd 252 ignores it. Follow
    with ``ready()`` when the reload is done, whether it succeeded or not.
    """
    extra = [f"STATUS={_one_line(status_text)}"] if status_text is not None else []
    return notify("RELOADING=1", f"MONOTONIC_USEC={monotonic_usec()}", *extra)


def stopping(status_text: str | None = "stopping") -> bool:
    """Send ``STOPPING=1`` (and ``STATUS=`` unless None): the graceful stop has begun."""
    extra = [f"STATUS={_one_line(status_text)}"] if status_text is not None else []
    return notify("STOPPING=1", *extra)


class Heartbeat:
    """Liveness of one pipeline component, for the watchdog.

    The component calls ``beat()`` whenever it makes progress (read its fd, took an item
    off its queue). ``pending()``, supplied by the component, says whether it has work
    waiting (bytes on its fd, items in its deque). The rule: a component with nothing
    pending is healthy however long ago it last beat; one with pending work that made no
    progress within ``window`` seconds is wedged.

    Args:
        name: shown in the log when the component is found wedged (e.g. ``"reader"``).
        pending: ``() -> bool``; cheap and non-blocking, called once per watchdog check.
        clock: seconds, monotonic; ``time.monotonic`` unless a test injects one.
    """

    def __init__(
        self,
        name: str,
        pending: Callable[[], bool],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._pending = pending
        self._clock = clock
        self._last_progress = clock()

    def beat(self) -> None:
        """Record progress now."""
        self._last_progress = self._clock()

    def is_alive(self, now: float, window: float) -> bool:
        """True unless work is pending and the last progress is older than ``window`` s.

        Seeing the component idle counts as progress: work that arrives later is measured
        from then, so input that lands just before a check is not mistaken for a wedge.
        """
        if not self._pending():
            self._last_progress = now
            return True
        return now - self._last_progress <= window


#: A watchdog probe: a Heartbeat, or an async callable returning True when healthy.
Probe = Heartbeat | Callable[[], Awaitable[bool]]


class Watchdog:
    """The service watchdog's settings, from the environment systemd sets.

    sd_watchdog_enabled(3): ``WATCHDOG_USEC`` is the timeout in µs; ``WATCHDOG_PID``, when
    set, names the process meant to feed it (a child that inherited the variables must not).

    Args:
        environ: the variables to read (``os.environ`` by default).
        pid: this process's pid (``os.getpid()`` by default).
    Attributes:
        interval: seconds between ``WATCHDOG=1`` messages (half the timeout, the
            recommendation of sd_watchdog_enabled(3)), or None when the watchdog is off.
    """

    def __init__(self, environ: Mapping[str, str] | None = None, pid: int | None = None) -> None:
        env = os.environ if environ is None else environ
        self.interval: float | None = None
        owner = env.get("WATCHDOG_PID")
        if owner and owner.strip() != str(os.getpid() if pid is None else pid):
            return
        try:
            usec = int(env.get("WATCHDOG_USEC", "0"))
        except ValueError:
            log.warning("ignoring WATCHDOG_USEC=%r: not an integer", env.get("WATCHDOG_USEC"))
            return
        if usec > 0:
            self.interval = usec / 2_000_000


async def _probe_ok(probe: Probe, now: float, window: float, timeout: float) -> bool:
    if isinstance(probe, Heartbeat):
        return probe.is_alive(now, window)
    try:
        async with asyncio.timeout(timeout):
            return await probe()
    except TimeoutError:
        return False


def _name(probe: Probe) -> str:
    return probe.name if isinstance(probe, Heartbeat) else getattr(probe, "__name__", "probe")


async def watchdog_loop(
    probes: Sequence[Probe],
    watchdog: Watchdog | None = None,
    *,
    send: Callable[[], object] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Send ``WATCHDOG=1`` every ``watchdog.interval`` seconds while every probe is healthy.

    Args:
        probes: ``Heartbeat`` objects, or async callables returning True when healthy (each
            awaited with a deadline of one interval; a timeout counts as unhealthy).
        watchdog: the settings; read from the environment when None.
        send: called to feed the watchdog; ``notify("WATCHDOG=1")`` by default.
        clock: monotonic seconds, shared with the heartbeats.
    Returns:
        at once when the watchdog is not enabled; otherwise runs until cancelled.
    Raises:
        nothing of its own; cancellation propagates.

    A Heartbeat counts as wedged after 1.5 intervals of pending work without progress:
    more than one check period, so work arriving just after a check is not flagged, and
    less than two, so systemd (timeout = 2 intervals) kills a wedged daemon within about
    two timeouts. While any probe fails no message is sent, and systemd's WatchdogSec=
    does the rest (SIGABRT, then Restart=).
    """
    wd = Watchdog() if watchdog is None else watchdog
    if wd.interval is None:
        return
    interval = wd.interval
    feed = send if send is not None else (lambda: notify("WATCHDOG=1"))
    wedged: set[str] = set()
    while True:
        now = clock()
        bad = [_name(p) for p in probes if not await _probe_ok(p, now, 1.5 * interval, interval)]
        if not bad:
            feed()
            if wedged:
                log.warning("watchdog: %s healthy again", ", ".join(sorted(wedged)))
        elif set(bad) != wedged:
            log.error("watchdog: not feeding systemd, no progress in %s", ", ".join(bad))
        wedged = set(bad)
        await asyncio.sleep(interval)
