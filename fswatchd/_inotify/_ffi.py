"""The libc binding: inotify_init1(2), inotify_add_watch(2), inotify_rm_watch(2).

Every ctypes detail of fswatchd lives here. The functions are declared with ``argtypes``
and ``restype`` and loaded with ``use_errno=True``, so ``ctypes.get_errno()`` reads the errno
of *this* call (ctypes saves it right after the foreign call, before Python code can touch
it). One checking helper, :func:`_check_call`, turns ``-1`` into ``OSError(errno, strerror,
path)`` and retries EINTR itself: PEP 475 retries only Python's own wrappers of system
calls, not foreign calls. The binding never decides that an errno is harmless; callers do.
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Callable

__all__ = ["inotify_add_watch", "inotify_init1", "inotify_rm_watch"]

# CDLL(None) is the process's own symbol table, which includes the C library's inotify
# wrappers on glibc and musl; it avoids ctypes.util.find_library, which may spawn ldconfig.
_libc = ctypes.CDLL(None, use_errno=True)

_init1 = _libc.inotify_init1
_init1.argtypes = (ctypes.c_int,)
_init1.restype = ctypes.c_int

_add_watch = _libc.inotify_add_watch
_add_watch.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32)
_add_watch.restype = ctypes.c_int

_rm_watch = _libc.inotify_rm_watch
_rm_watch.argtypes = (ctypes.c_int, ctypes.c_int)
_rm_watch.restype = ctypes.c_int

_get_errno = ctypes.get_errno
_EINTR = errno.EINTR


def _check_call(
    func: Callable[..., int], args: tuple[int | bytes, ...], path: bytes | None = None
) -> int:
    """Call ``func(*args)``; return its non-negative result, retry EINTR, raise otherwise.

    Raises:
        OSError: ``OSError(errno, os.strerror(errno), path)`` for any failure but EINTR;
            Python picks the subclass (FileNotFoundError for ENOENT, ...).
    """
    while True:
        result = func(*args)
        if result >= 0:
            return result
        err = _get_errno()
        if err != _EINTR:
            raise OSError(err, os.strerror(err), path)


def inotify_init1(flags: int) -> int:
    """inotify_init1(2): a new inotify instance; returns its fd (int).

    Args:
        flags: ``InitFlag`` bits (IN_CLOEXEC, IN_NONBLOCK).
    Raises:
        OSError: EMFILE (per-user instance limit or per-process fd limit), ENFILE, ENOMEM,
            EINVAL.
    """
    return _check_call(_init1, (flags,))


def inotify_add_watch(fd: int, path: bytes, mask: int) -> int:
    """inotify_add_watch(2): watch ``path`` (bytes, no NUL) for ``mask``; returns the wd.

    The kernel returns the existing wd when the inode is already watched by this instance.

    Raises:
        OSError: with ``errno`` and ``filename == path``: ENOENT, ENOTDIR (IN_ONLYDIR),
            EACCES, ENOSPC (watch limit), EEXIST (IN_MASK_CREATE), EINVAL, ELOOP, ...
    """
    return _check_call(_add_watch, (fd, path, mask), path)


def inotify_rm_watch(fd: int, wd: int) -> None:
    """inotify_rm_watch(2): remove watch ``wd``; the kernel then queues IN_IGNORED for it.

    Raises:
        OSError: EINVAL when ``wd`` is not a valid watch of this instance (for example
            already removed because its object was deleted), EBADF.
    """
    _check_call(_rm_watch, (fd, wd))
