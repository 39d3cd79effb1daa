"""sd_notify(3): tell the service manager about readiness, reloads, status and liveness.

Uses systemd-python's ``systemd.daemon.notify`` when it is installed; otherwise sends the
one datagram the protocol consists of. A no-op (returning False) when ``NOTIFY_SOCKET`` is
unset, so the daemon runs unchanged outside systemd.
"""

from __future__ import annotations

import logging
import os
import socket

__all__ = ["notify"]

log = logging.getLogger(__name__)

try:  # the optional extra `systemd`
    from systemd import daemon as _sd_daemon
except ImportError:  # pragma: no cover - depends on the environment
    _sd_daemon = None


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
        must never take the daemon down.
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
