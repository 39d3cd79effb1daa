"""InotifyFd against the real kernel, under tmp_path (inotify(7), inotify_add_watch(2))."""

from __future__ import annotations

import errno
import fcntl
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fswatchd._inotify.fd import InotifyFd
from fswatchd._inotify.flags import InitFlag, Mask
from fswatchd._inotify.limits import instance_limit, queued_events_limit, watch_limit
from fswatchd._inotify.parse import parse_events
from fswatchd.events import RawEvent

DIR_MASK = Mask.ALL | Mask.ONLYDIR | Mask.DONT_FOLLOW


@pytest.fixture
def ifd() -> Iterator[InotifyFd]:
    with InotifyFd() as fd:
        yield fd


def read_all(fd: InotifyFd) -> list[RawEvent]:
    """Every queued event; inotify queues synchronously with the syscall that caused it."""
    events: list[RawEvent] = []
    while True:
        try:
            events += parse_events(fd.read())
        except BlockingIOError:
            return events


def test_default_fd_is_cloexec_and_nonblocking(ifd: InotifyFd) -> None:
    assert fcntl.fcntl(ifd.fileno(), fcntl.F_GETFD) & fcntl.FD_CLOEXEC
    assert fcntl.fcntl(ifd.fileno(), fcntl.F_GETFL) & os.O_NONBLOCK
    assert not os.get_inheritable(ifd.fileno())


def test_flags_are_passed_to_init1() -> None:
    with InotifyFd(InitFlag(0)) as fd:
        assert not fcntl.fcntl(fd.fileno(), fcntl.F_GETFD) & fcntl.FD_CLOEXEC
        assert not fcntl.fcntl(fd.fileno(), fcntl.F_GETFL) & os.O_NONBLOCK


def test_invalid_init_flags_raise_einval() -> None:
    with pytest.raises(OSError) as info:
        InotifyFd(0x1)
    assert info.value.errno == errno.EINVAL


def test_read_without_events_raises_blocking_io_error(ifd: InotifyFd, tmp_path: Path) -> None:
    ifd.add_watch(bytes(tmp_path), DIR_MASK)
    with pytest.raises(BlockingIOError):
        ifd.read()
    with pytest.raises(BlockingIOError):
        ifd.read_into(bytearray(4096))


def test_add_watch_rm_watch_roundtrip_ends_with_ignored(ifd: InotifyFd, tmp_path: Path) -> None:
    wd = ifd.add_watch(bytes(tmp_path), DIR_MASK)
    assert wd >= 1
    (tmp_path / "f").touch()
    ifd.rm_watch(wd)
    events = read_all(ifd)
    assert events[0] == RawEvent(wd, int(Mask.CREATE), 0, b"f")
    assert events[-1] == RawEvent(wd, int(Mask.IGNORED), 0, b"")
    # A second removal is the kernel's EINVAL; deciding it is harmless is the caller's job.
    with pytest.raises(OSError) as info:
        ifd.rm_watch(wd)
    assert info.value.errno == errno.EINVAL


def test_read_into_fills_a_buffer(ifd: InotifyFd, tmp_path: Path) -> None:
    wd = ifd.add_watch(bytes(tmp_path), Mask.CREATE)
    (tmp_path / "new\nname").mkdir()
    buf = bytearray(4096)
    n = ifd.read_into(buf)
    assert parse_events(memoryview(buf)[:n]) == [
        RawEvent(wd, int(Mask.CREATE | Mask.ISDIR), 0, b"new\nname")
    ]


def test_same_inode_twice_gives_the_same_wd(ifd: InotifyFd, tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    first = ifd.add_watch(bytes(tmp_path / "d"), DIR_MASK)
    again = ifd.add_watch(bytes(tmp_path / "d") + b"/.", DIR_MASK)
    other = ifd.add_watch(bytes(tmp_path), DIR_MASK)
    assert again == first
    assert other != first


def test_mask_create_on_watched_inode_is_eexist(ifd: InotifyFd, tmp_path: Path) -> None:
    ifd.add_watch(bytes(tmp_path), DIR_MASK)
    with pytest.raises(FileExistsError) as info:
        ifd.add_watch(bytes(tmp_path), DIR_MASK | Mask.MASK_CREATE)
    assert info.value.filename == bytes(tmp_path)


def test_missing_path_is_enoent_with_path(ifd: InotifyFd, tmp_path: Path) -> None:
    path = bytes(tmp_path) + b"/missing-\xff"
    with pytest.raises(FileNotFoundError) as info:
        ifd.add_watch(path, DIR_MASK)
    assert info.value.errno == errno.ENOENT
    assert info.value.filename == path
    assert info.value.strerror == os.strerror(errno.ENOENT)


def test_onlydir_on_a_file_is_enotdir_with_path(ifd: InotifyFd, tmp_path: Path) -> None:
    (tmp_path / "file").touch()
    path = bytes(tmp_path / "file")
    with pytest.raises(NotADirectoryError) as info:
        ifd.add_watch(path, DIR_MASK)
    assert info.value.errno == errno.ENOTDIR
    assert info.value.filename == path


def test_dont_follow_watches_the_symlink_not_its_target(ifd: InotifyFd, tmp_path: Path) -> None:
    (tmp_path / "target").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "target")
    with pytest.raises(NotADirectoryError):
        ifd.add_watch(bytes(tmp_path / "link"), DIR_MASK)


def test_embedded_nul_is_refused_not_truncated(ifd: InotifyFd, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="NUL"):
        ifd.add_watch(bytes(tmp_path) + b"\0/elsewhere", DIR_MASK)


def test_close_is_idempotent_and_use_after_close_raises(tmp_path: Path) -> None:
    fd = InotifyFd()
    number = fd.fileno()
    assert not fd.closed
    fd.close()
    fd.close()
    assert fd.closed
    with pytest.raises(OSError) as info:  # the number really was released
        os.fstat(number)
    assert info.value.errno == errno.EBADF
    calls = [
        fd.fileno,
        fd.read,
        lambda: fd.read_into(bytearray(16)),
        lambda: fd.add_watch(bytes(tmp_path), DIR_MASK),
        lambda: fd.rm_watch(1),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="closed"):
            call()


def test_context_manager_closes() -> None:
    with InotifyFd() as fd:
        assert fd.fileno() >= 0
    assert fd.closed


def test_limits_are_read_from_proc() -> None:
    for limit in (watch_limit(), instance_limit(), queued_events_limit()):
        assert limit is None or limit > 0
    with open("/proc/sys/fs/inotify/max_user_watches", "rb") as f:
        assert watch_limit() is not None
        assert watch_limit() <= int(f.read())  # type: ignore[operator]


def test_emfile_names_the_instance_sysctl() -> None:
    """1. In a child, lower RLIMIT_NOFILE to the fds already open.
    2. InotifyFd() fails with EMFILE; the message names both limits.
    """
    script = (
        "import os, resource\n"
        "from fswatchd._inotify.fd import InotifyFd\n"
        "n = len(os.listdir('/proc/self/fd'))\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (n - 1, n - 1))\n"
        "try:\n"
        "    InotifyFd()\n"
        "except OSError as exc:\n"
        "    print(exc.errno, exc.strerror)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    assert out.startswith(f"{errno.EMFILE} ")
    assert "fs.inotify.max_user_instances" in out
    assert "RLIMIT_NOFILE" in out


def test_bytes_queued_counts_what_the_kernel_holds(tmp_path: Path) -> None:
    """1. Nothing queued: 0.  2. One CREATE queued: one record's worth.  3. Read: 0 again."""
    with InotifyFd() as fd:
        fd.add_watch(os.fsencode(tmp_path), Mask.CREATE)
        assert fd.bytes_queued() == 0
        (tmp_path / "abc").touch()
        queued = fd.bytes_queued()
        assert queued >= 16 + len(b"abc")
        assert len(fd.read()) == queued
        assert fd.bytes_queued() == 0
