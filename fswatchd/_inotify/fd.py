"""InotifyFd: one inotify instance (inotify(7)), owned and closed by one object. Sync only.

The fd is created with IN_CLOEXEC (children spawned by actions must not inherit it, PEP 446)
and IN_NONBLOCK (the asyncio reader reads until EAGAIN). Errors are raised as the kernel
reports them; deciding that one is harmless (ENOENT for a directory that vanished, EINVAL
from rm_watch for a watch the kernel already dropped) is the caller's business.
"""

from __future__ import annotations

import array
import enum
import errno
import fcntl
import os
import resource
import termios
import warnings
from types import TracebackType

from . import _ffi
from .flags import InitFlag
from .limits import instance_limit

__all__ = ["DEFAULT_READ_SIZE", "InotifyFd"]

#: Bytes per read(2): room for ~8000 records with short names, ~1000 with 255-byte names.
DEFAULT_READ_SIZE = 262_144

_add_watch = _ffi.inotify_add_watch
_os_read = os.read


class _State(enum.Enum):
    OPEN = "open"
    CLOSED = "closed"


class InotifyFd:
    """One inotify instance: ``inotify_init1``, ``add_watch``, ``rm_watch``, ``read``, ``close``.

    Args:
        flags: ``InitFlag`` bits for inotify_init1(2); CLOEXEC|NONBLOCK by default.
    Raises:
        OSError: from inotify_init1(2). EMFILE carries a message naming the per-user
            instance limit ``fs.inotify.max_user_instances`` and the process fd limit.

    Usable as a context manager; every method but ``close`` and ``closed`` raises
    ``ValueError`` after :meth:`close`, as file objects do.
    """

    __slots__ = ("_fd", "_state")

    def __init__(self, flags: int = InitFlag.CLOEXEC | InitFlag.NONBLOCK) -> None:
        self._fd = -1
        self._state = _State.CLOSED
        try:
            self._fd = _ffi.inotify_init1(int(flags))
        except OSError as exc:
            if exc.errno == errno.EMFILE:
                raise OSError(errno.EMFILE, _emfile_message()) from exc
            raise
        self._state = _State.OPEN

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return self._state is _State.CLOSED

    def fileno(self) -> int:
        """The inotify fd (int), for ``loop.add_reader``. Raises ValueError when closed."""
        if self._state is _State.CLOSED:
            raise ValueError("I/O operation on a closed inotify fd")
        return self._fd

    def add_watch(self, path: bytes, mask: int) -> int:
        """inotify_add_watch(2): watch ``path`` for ``mask``; return its wd (int >= 1).

        Args:
            path: the file system path, exact bytes (no NUL byte).
            mask: ``Mask`` bits, e.g. ``Mask.ALL | Mask.ONLYDIR | Mask.DONT_FOLLOW``.
        Returns:
            the watch descriptor; the same wd as before when this instance already watches
            the inode (the mask is then replaced, or OR-ed with IN_MASK_ADD).
        Raises:
            OSError: ``errno`` and ``filename == path`` as the kernel reports them: ENOENT,
                ENOTDIR (IN_ONLYDIR), EACCES, ENOSPC (``fs.inotify.max_user_watches``),
                EEXIST (IN_MASK_CREATE), ELOOP, ENAMETOOLONG, EINVAL.
            ValueError: the fd is closed, or ``path`` contains a NUL byte.
        """
        fd = self._fd
        # ctypes would silently cut a c_char_p at the first NUL and watch another path.
        if fd < 0 or b"\0" in path:
            raise ValueError(
                "I/O operation on a closed inotify fd" if fd < 0 else f"embedded NUL in {path!r}"
            )
        return _add_watch(fd, path, mask)

    def rm_watch(self, wd: int) -> None:
        """inotify_rm_watch(2): remove watch ``wd``; the kernel then queues IN_IGNORED.

        Raises:
            OSError: EINVAL when ``wd`` is not (or no longer) a watch of this instance,
                e.g. after its directory was deleted; the caller decides if that matters.
            ValueError: the fd is closed.
        """
        _ffi.inotify_rm_watch(self.fileno(), wd)

    def read(self, size: int = DEFAULT_READ_SIZE) -> bytes:
        """read(2) up to ``size`` bytes of whole event records (parse with parse_events).

        Raises:
            BlockingIOError: nothing queued (EAGAIN) on a non-blocking fd, as os.read does.
            OSError: EINVAL when ``size`` is smaller than the next record.
            ValueError: the fd is closed.
        """
        return _os_read(self.fileno(), size)

    def read_into(self, buf: bytearray | memoryview) -> int:
        """read(2) into ``buf`` (writable); returns the number of bytes read.

        Raises: as :meth:`read`.
        """
        return os.readv(self.fileno(), [buf])

    def bytes_queued(self) -> int:
        """Bytes of events the kernel holds for this fd right now (FIONREAD, inotify(7)).

        Raises: ValueError after close(); OSError from ioctl(2).
        """
        count = array.array("i", [0])
        fcntl.ioctl(self.fileno(), termios.FIONREAD, count, True)
        return count[0]

    def close(self) -> None:
        """Close the fd; the kernel drops every watch. Idempotent."""
        if self._state is _State.CLOSED:
            return
        fd, self._fd, self._state = self._fd, -1, _State.CLOSED
        os.close(fd)

    def __enter__(self) -> InotifyFd:
        self.fileno()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        # Like unclosed files: close the fd rather than leak it, and say so.
        if getattr(self, "_state", _State.CLOSED) is _State.OPEN:
            warnings.warn(f"unclosed {self!r}", ResourceWarning, stacklevel=2, source=self)
            self.close()

    def __repr__(self) -> str:
        return f"<InotifyFd fd={self._fd} {self._state.value}>"


def _emfile_message() -> str:
    """The EMFILE sentence: both limits that inotify_init1(2) can hit, with their values."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return (
        "inotify_init1: too many inotify instances for this user "
        f"(fs.inotify.max_user_instances = {instance_limit()}) or too many open files in this "
        f"process (RLIMIT_NOFILE = {soft}); raise the sysctl fs.inotify.max_user_instances "
        "(or LimitNOFILE= in the unit) or stop other inotify users of this uid"
    )
