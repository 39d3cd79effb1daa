"""The webhook body and its signature: JSON that carries exact path bytes, HMAC-SHA256.

Paths are bytes and need not be UTF-8. Each path appears twice:

* as a JSON string made with ``os.fsdecode`` (surrogateescape) and serialised with
  ``ensure_ascii=True``: valid UTF-8 names read naturally (``\\u00e9``), and each byte that
  is not valid UTF-8 becomes a lone-surrogate escape ``\\udcXX`` (XX = the byte), which
  Python receivers turn back into the bytes with ``os.fsencode``; strict JSON parsers in
  other languages may reject or replace lone surrogates, hence:
* as ``*_b64``: standard base64 (RFC 4648) of the exact bytes, always present, so any
  receiver can recover the name.

The body is built once per job; retries send the same bytes (and the same signature).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import os
from typing import Any

from ..events import mask_names
from .base import Job

__all__ = ["SIGNATURE_HEADER", "build_body", "sign"]

#: The header carrying ``sha256=<hex HMAC-SHA256 of the body>`` when a secret is set.
SIGNATURE_HEADER = "X-Fswatchd-Signature-256"


def _text(path: bytes | None) -> str | None:
    """A path as a JSON-ready string (surrogateescape), or None."""
    return None if path is None else os.fsdecode(path)


def _b64(path: bytes | None) -> str | None:
    """A path as standard base64 of its exact bytes, or None."""
    return None if path is None else base64.b64encode(path).decode("ascii")


def _rfc3339(now: float) -> str:
    """Seconds since the epoch as ``2024-05-01T12:00:00.123456Z``."""
    moment = datetime.datetime.fromtimestamp(now, tz=datetime.UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def build_body(job: Job, *, now: float) -> bytes:
    """The JSON body POSTed for ``job``.

    Args:
        job: the job.
        now: the delivery time, seconds since the epoch (the ``time`` field).
    Returns:
        compact ASCII JSON bytes of an object with ``id`` (the event id, str), ``rule``,
        ``path`` and ``path_b64`` (``null`` for an overflow event), ``src_path`` (``null``
        unless a paired rename) and ``src_path_b64`` (only with ``src_path``), ``mask``
        (list of inotify(7) names, e.g. ``["MOVED_TO", "ISDIR"]``), ``is_dir``,
        ``synthetic``, ``root``, ``relpath``, ``time`` (RFC 3339, UTC) and ``merged``
        (events this delivery stands for); batch jobs add ``paths`` and ``paths_b64``.
    """
    event = job.event
    body: dict[str, Any] = {
        "id": job.event_id,
        "rule": job.rule,
        "path": _text(event.path),
        "path_b64": _b64(event.path),
        "src_path": _text(event.src_path),
        "mask": list(mask_names(event.mask)),
        "is_dir": event.is_dir,
        "synthetic": event.synthetic,
        "root": _text(job.root),
        "relpath": _text(job.relpath),
        "time": _rfc3339(now),
        "merged": job.merged,
    }
    if event.src_path is not None:
        body["src_path_b64"] = _b64(event.src_path)
    if job.paths:
        body["paths"] = [_text(p) for p in job.paths]
        body["paths_b64"] = [_b64(p) for p in job.paths]
    return json.dumps(body, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def sign(secret: bytes, body: bytes) -> str:
    """The signature header value: ``sha256=`` and the hex HMAC-SHA256 (RFC 2104) of body.

    Args:
        secret: the rule's shared secret.
        body: the exact body bytes sent.
    Returns:
        e.g. ``"sha256=5c8f..."`` (64 lowercase hex digits).
    """
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
