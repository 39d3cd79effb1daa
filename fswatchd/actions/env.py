"""Event data for children: the ``{placeholder}`` values and the environment, as exact bytes.

File names are bytes on Linux and are never decoded on the way to a child: a name holding
``$(touch pwned)``, a newline or byte 0xff reaches argv and the environment unchanged. The
environment is built as ``bytes -> bytes`` so that ``os.environb`` semantics apply.

The child environment is exactly (later entries win):

1. ``PATH`` = :data:`DEFAULT_PATH` (or the caller's ``base_path``);
2. the rule's ``env:`` mapping;
3. the ``FSWATCHD_*`` event variables (:data:`EVENT_VARIABLES`).

Nothing else is passed from the daemon's own environment (no HOME, LANG, proxies, ...):
a rule that needs them sets them in ``env:``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ..events import mask_names
from .base import Job

__all__ = [
    "DEFAULT_PATH",
    "EVENT_VARIABLES",
    "check_env_names",
    "job_env",
    "job_values",
    "mask_text",
]

#: ``PATH`` given to children unless the rule's ``env:`` sets another.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: The event variables every child gets (plus FSWATCHD_PATHS_FILE for batch jobs).
EVENT_VARIABLES: tuple[str, ...] = (
    "FSWATCHD_RULE",
    "FSWATCHD_EVENT_ID",
    "FSWATCHD_PATH",
    "FSWATCHD_SRC_PATH",
    "FSWATCHD_NAME",
    "FSWATCHD_DIR",
    "FSWATCHD_ROOT",
    "FSWATCHD_RELPATH",
    "FSWATCHD_MASK",
    "FSWATCHD_IS_DIR",
    "FSWATCHD_SYNTHETIC",
    "FSWATCHD_MERGED",
)


def mask_text(mask: int) -> bytes:
    """The mask as ``b"MOVED_TO|ISDIR"`` (inotify(7) names, ``|``-joined; ``b""`` if none)."""
    return "|".join(mask_names(mask)).encode("ascii")


def job_values(job: Job) -> dict[str, bytes]:
    """The ``{placeholder}`` values for ``job`` (see fswatchd/template.py).

    Args:
        job: the job.
    Returns:
        ``path``, ``src_path`` (``b""`` when the event is not a paired rename), ``name``
        (basename of path), ``dir`` (dirname of path), ``root``, ``relpath``, ``mask``
        (e.g. ``b"MOVED_TO|ISDIR"``) and ``rule``, all exact bytes. ``paths`` is not a
        value: the argv builder expands it to one element per batch path.
    """
    path = job.event.path or b""
    return {
        "path": path,
        "src_path": job.event.src_path or b"",
        "name": os.path.basename(path),
        "dir": os.path.dirname(path),
        "root": job.root,
        "relpath": job.relpath,
        "mask": mask_text(job.event.mask),
        "rule": os.fsencode(job.rule),
    }


def check_env_names(env: Mapping[str, str]) -> None:
    """Reject environment entries no child could receive.

    Raises:
        ValueError: a name that is empty or holds ``=`` or NUL, or a value holding NUL
            (execve(2) takes ``NAME=value`` C strings).
    """
    for name, value in env.items():
        if not name or "=" in name or "\0" in name:
            raise ValueError(f"invalid environment variable name {name!r}: no '=' or NUL")
        if "\0" in value:
            raise ValueError(f"environment variable {name} holds a NUL byte")


def job_env(
    job: Job,
    *,
    base_path: str = DEFAULT_PATH,
    extra: Mapping[str, str] | None = None,
    paths_file: str | None = None,
) -> dict[bytes, bytes]:
    """The complete environment for a child running ``job``.

    Args:
        job: the job.
        base_path: the ``PATH`` value unless ``extra`` sets ``PATH``.
        extra: the rule's ``env:`` (str -> str, encoded with os.fsencode); it may
            override ``PATH`` but not the ``FSWATCHD_*`` event variables.
        paths_file: for batch jobs, the file listing every path (each followed by a NUL
            byte), given as ``FSWATCHD_PATHS_FILE``.
    Returns:
        ``bytes -> bytes``: PATH, the rule's env, then FSWATCHD_RULE, FSWATCHD_EVENT_ID,
        FSWATCHD_PATH, FSWATCHD_SRC_PATH, FSWATCHD_NAME, FSWATCHD_DIR, FSWATCHD_ROOT,
        FSWATCHD_RELPATH, FSWATCHD_MASK, FSWATCHD_IS_DIR (``0``/``1``),
        FSWATCHD_SYNTHETIC (``0``/``1``), FSWATCHD_MERGED and, for batches,
        FSWATCHD_PATHS_FILE.
    """
    env: dict[bytes, bytes] = {b"PATH": os.fsencode(base_path)}
    if extra:
        env.update((os.fsencode(k), os.fsencode(v)) for k, v in extra.items())
    values = job_values(job)
    event = job.event
    env.update(
        {
            b"FSWATCHD_RULE": values["rule"],
            b"FSWATCHD_EVENT_ID": job.event_id.encode("ascii", "backslashreplace"),
            b"FSWATCHD_PATH": values["path"],
            b"FSWATCHD_SRC_PATH": values["src_path"],
            b"FSWATCHD_NAME": values["name"],
            b"FSWATCHD_DIR": values["dir"],
            b"FSWATCHD_ROOT": values["root"],
            b"FSWATCHD_RELPATH": values["relpath"],
            b"FSWATCHD_MASK": values["mask"],
            b"FSWATCHD_IS_DIR": b"1" if event.is_dir else b"0",
            b"FSWATCHD_SYNTHETIC": b"1" if event.synthetic else b"0",
            b"FSWATCHD_MERGED": str(job.merged).encode("ascii"),
        }
    )
    if paths_file is not None:
        env[b"FSWATCHD_PATHS_FILE"] = os.fsencode(paths_file)
    return env
