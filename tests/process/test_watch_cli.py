"""``fswatchd watch`` as a real subprocess: readiness, event lines, filters, signals, exits.

Readiness comes from a real NOTIFY_SOCKET listener (READY=1 is sent once every initial watch
is in place), so every file operation after it must be reported. Lines are read with a
deadline; ordering is proven by the stream itself (a later event is a barrier for earlier
ones), never by sleeping.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fswatchd.output import escape_text

TOOLS = Path(__file__).resolve().parents[2].parent / "shared" / "tools"
if not (TOOLS / "sdtest.py").is_file():
    pytest.skip(f"{TOOLS}/sdtest.py (the NotifyListener) is missing", allow_module_level=True)
sys.path.insert(0, str(TOOLS))
from sdtest import NotifyListener  # noqa: E402

WAIT = 20.0  # seconds; generous for a loaded 2-core machine, never reached when all is well

HOSTILE = [
    b"new\nline",
    b"\xff\xfe not utf-8",
    b'q"uo\\te',
    b"$(touch pwned); `id`",
    b"tab\there",
    b"\x1b[31mred\x07",
    b"-rf",
    "caf\u00e9".encode(),
]


class Watch:
    """A running ``fswatchd watch`` child with line-by-line access to its stdout."""

    def __init__(self, proc: subprocess.Popen[bytes], listener: NotifyListener) -> None:
        self.proc = proc
        self.listener = listener
        self._buf = b""
        self.seen: list[bytes] = []

    def line(self, timeout: float = WAIT) -> bytes | None:
        """The next stdout line without its newline; None at EOF; TimeoutError after
        ``timeout`` seconds."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError(f"no line within {timeout} s; lines so far: {self.seen!r}")
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        self.seen.append(line)
        return line

    def events_until(self, stop: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        """JSON events read up to and including the first for which ``stop`` is true."""
        events = []
        while True:
            line = self.line()
            assert line is not None, f"EOF before the expected event; lines: {self.seen!r}"
            event = json.loads(line)
            events.append(event)
            if stop(event):
                return events

    def wait(self, timeout: float = WAIT) -> tuple[int, bytes]:
        """Exit status and everything written to stderr."""
        assert self.proc.stderr is not None
        code = self.proc.wait(timeout)
        return code, self.proc.stderr.read()


@pytest.fixture
def start_watch(tmp_path: Path) -> Iterator[Callable[..., Watch]]:
    """``start_watch(*args)`` runs ``python -m fswatchd watch *args`` and waits for READY=1."""
    started: list[Watch] = []
    listener = NotifyListener()

    def start(*args: str | bytes, ready: bool = True) -> Watch:
        proc = listener.popen(
            [sys.executable, "-m", "fswatchd", "watch", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=tmp_path,
        )
        watch = Watch(proc, listener)
        started.append(watch)
        if ready:
            try:
                message = listener.wait_for(READY="1", timeout=WAIT)
            except TimeoutError:
                proc.kill()
                raise AssertionError(f"no READY=1; stderr: {proc.communicate()[1]!r}") from None
            assert message.pid == proc.pid
        return watch

    yield start
    for watch in started:
        if watch.proc.poll() is None:
            watch.proc.kill()
        watch.proc.communicate()
    listener.close()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """The watched directory, with a sibling ``outside`` on the same filesystem."""
    (tmp_path / "outside").mkdir()
    path = tmp_path / "root"
    path.mkdir()
    return path


def write(path: Path | bytes, data: bytes = b"x") -> None:
    with open(path, "wb") as f:
        f.write(data)


def touch(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def summary(events: list[dict[str, Any]], root: Path) -> list[tuple[str, bytes, bool]]:
    """(mask names joined, path relative to root, synthetic) per event."""
    prefix = os.fsencode(root) + b"/"
    return [
        (",".join(e["mask"]), os.fsencode(e["path"]).removeprefix(prefix), e["synthetic"])
        for e in events
    ]


def test_create_write_read_rename_delete(start_watch: Callable[..., Watch], root: Path) -> None:
    """1. Start with the default mask; READY=1.
    2. Write a file, read it back, rename it, delete it.
    3. The lines are exactly CREATE, MODIFY, CLOSE_WRITE, MOVED_TO (with src_path), DELETE:
       no OPEN, ACCESS or CLOSE_NOWRITE, and every line has every documented field."""
    watch = start_watch("-r", "--json", str(root))
    write(root / "a", b"hello")
    assert (root / "a").read_bytes() == b"hello"
    (root / "a").rename(root / "b")
    (root / "b").unlink()
    events = watch.events_until(lambda e: e["mask"] == ["DELETE"])
    moves = [e for e in events if "MOVED_TO" in e["mask"]]
    assert len(moves) == 1
    assert moves[0]["src_path"] == str(root / "a")
    assert isinstance(moves[0]["cookie"], int)
    assert [s for s in summary(events, root) if s[0] != "MOVED_FROM"] == [
        ("CREATE", b"a", False),
        ("MODIFY", b"a", False),
        ("CLOSE_WRITE", b"a", False),
        ("MOVED_TO", b"b", False),
        ("DELETE", b"b", False),
    ]
    for event in events:
        assert {"path", "mask", "is_dir", "src_path", "synthetic", "cookie"} <= event.keys()
        assert event["is_dir"] is False


def test_ready_means_every_initial_watch_is_placed(
    start_watch: Callable[..., Watch], root: Path
) -> None:
    """1. A tree exists before the start: a/b/c (and a file, which is not reported).
    2. Right after READY=1, write a/b/c/new: it is reported, and the first line is its
       CREATE: the initial walk itself reports nothing."""
    (root / "a" / "b" / "c").mkdir(parents=True)
    write(root / "a" / "old")
    watch = start_watch("-r", "--json", str(root))
    write(root / "a" / "b" / "c" / "new")
    events = watch.events_until(lambda e: e["mask"] == ["CLOSE_WRITE"])
    assert [(m, p) for m, p, _ in summary(events, root)] == [
        ("CREATE", b"a/b/c/new"),
        ("MODIFY", b"a/b/c/new"),
        ("CLOSE_WRITE", b"a/b/c/new"),
    ]


def test_moved_in_directory_is_scanned(start_watch: Callable[..., Watch], root: Path) -> None:
    """1. Build d/e/f outside the root, then move d in: the kernel reports only d.
    2. The scan reports d/e and d/e/f as synthetic events; the file gives CREATE, then
       CLOSE_WRITE, each its own line."""
    outside = root.parent / "outside"
    (outside / "d" / "e").mkdir(parents=True)
    write(outside / "d" / "e" / "f")
    watch = start_watch("-r", "--json", str(root))
    (outside / "d").rename(root / "d")
    events = watch.events_until(lambda e: e["mask"] == ["CLOSE_WRITE"])
    got = summary(events, root)
    assert got[0] == ("MOVED_TO,ISDIR", b"d", False)
    assert events[0]["src_path"] is None
    assert got[1:] == [
        ("CREATE,ISDIR", b"d/e", True),
        ("CREATE", b"d/e/f", True),
        ("CLOSE_WRITE", b"d/e/f", True),
    ]


def test_new_tree_is_reported_whole(start_watch: Callable[..., Watch], root: Path) -> None:
    """1. mkdir -p a/b/c and write a/b/c/f right away (races the new watches).
    2. Every directory and the file are reported, by the kernel or by a scan, before a
       barrier file written afterwards; f's first CREATE comes before its first
       CLOSE_WRITE."""
    watch = start_watch("-r", "--json", str(root))
    (root / "a" / "b" / "c").mkdir(parents=True)
    write(root / "a" / "b" / "c" / "f")
    write(root / "barrier")  # root's watch surely exists: its CLOSE_WRITE comes last
    events = watch.events_until(
        lambda e: e["path"] == str(root / "barrier") and e["mask"] == ["CLOSE_WRITE"]
    )
    got = [(m, p) for m, p, _ in summary(events, root)]
    for path in (b"a", b"a/b", b"a/b/c"):
        assert ("CREATE,ISDIR", path) in got
    assert got.index(("CREATE", b"a/b/c/f")) < got.index(("CLOSE_WRITE", b"a/b/c/f"))


def test_event_filter(start_watch: Callable[..., Watch], root: Path) -> None:
    """1. -e close_write -e MOVED_TO (given twice, case-insensitive).
    2. Write, rename, delete a file, then write a barrier file.
    3. Only CLOSE_WRITE and MOVED_TO lines appear."""
    watch = start_watch("-r", "--json", "-e", "close_write", "-e", "MOVED_TO", str(root))
    write(root / "a")
    (root / "a").rename(root / "b")
    (root / "b").unlink()
    write(root / "barrier")
    events = watch.events_until(lambda e: e["path"] == str(root / "barrier"))
    assert [(m, p) for m, p, _ in summary(events, root)] == [
        ("CLOSE_WRITE", b"a"),
        ("MOVED_TO", b"b"),
        ("CLOSE_WRITE", b"barrier"),
    ]


def test_read_side_events_when_asked(start_watch: Callable[..., Watch], root: Path) -> None:
    """1. A file exists; -e open,access,close_nowrite,close_write.
    2. Reading it gives OPEN, ACCESS, CLOSE_NOWRITE; a write after it is the barrier.
       (Directory lines, e.g. from the watcher listing the root, are left out.)"""
    write(root / "a", b"data")
    watch = start_watch("-r", "--json", "-e", "open,access,close_nowrite,close_write", str(root))
    assert (root / "a").read_bytes() == b"data"
    write(root / "barrier")
    events = watch.events_until(lambda e: e["mask"] == ["CLOSE_WRITE"])
    files = [e for e in events if not e["is_dir"]]
    assert [(m, p) for m, p, _ in summary(files, root)] == [
        ("OPEN", b"a"),
        ("ACCESS", b"a"),
        ("CLOSE_NOWRITE", b"a"),
        ("OPEN", b"barrier"),
        ("CLOSE_WRITE", b"barrier"),
    ]


def test_without_r_subdirectories_are_not_watched(
    start_watch: Callable[..., Watch], root: Path
) -> None:
    """1. Watch root without -r; create sub/, sub/f, then a barrier file in root.
    2. sub/ is reported (it is a child of root); sub/f is not."""
    watch = start_watch("--json", str(root))
    (root / "sub").mkdir()
    write(root / "sub" / "f")
    write(root / "barrier")
    events = watch.events_until(lambda e: e["mask"] == ["CLOSE_WRITE"])
    assert [(m, p) for m, p, _ in summary(events, root)] == [
        ("CREATE,ISDIR", b"sub"),
        ("CREATE", b"barrier"),
        ("MODIFY", b"barrier"),
        ("CLOSE_WRITE", b"barrier"),
    ]


@pytest.mark.parametrize("name", HOSTILE, ids=repr)
def test_hostile_names_json_byte_exact(
    start_watch: Callable[..., Watch], root: Path, name: bytes
) -> None:
    """1. Create a file with a hostile name, rename it to another hostile name.
    2. The JSON lines give back the exact bytes of both (surrogateescape), and no file
       named by the shell fragments appears."""
    watch = start_watch("-r", "--json", "-e", "create,moved_to", os.fsencode(root))
    rootb = os.fsencode(root)
    write(rootb + b"/" + name)
    os.rename(rootb + b"/" + name, rootb + b"/" + name + b".2")
    events = watch.events_until(lambda e: "MOVED_TO" in e["mask"])
    assert [os.fsencode(e["path"]) for e in events] == [
        rootb + b"/" + name,
        rootb + b"/" + name + b".2",
    ]
    assert os.fsencode(events[1]["src_path"]) == rootb + b"/" + name
    assert sorted(os.listdir(rootb)) == [name + b".2"]
    assert not (root.parent / "pwned").exists()


def test_hostile_names_text_one_line_each(start_watch: Callable[..., Watch], root: Path) -> None:
    """1. Text output; create every hostile name, then a barrier.
    2. Exactly one line per event, each ending in the escaped path."""
    watch = start_watch("-r", "-e", "create", str(root))
    rootb = os.fsencode(root)
    for name in HOSTILE:
        write(rootb + b"/" + name)
    write(rootb + b"/barrier")
    lines = []
    while not lines or not lines[-1].endswith(b"/barrier"):
        line = watch.line()
        assert line is not None
        lines.append(line)
    assert lines == [
        b"CREATE".ljust(22) + b" " + escape_text(rootb + b"/" + name)
        for name in [*HOSTILE, b"barrier"]
    ]


def test_overflow_line_then_repair(start_watch: Callable[..., Watch], root: Path) -> None:
    """1. Stop the watch (SIGSTOP, confirmed by waitid) and create as many files as the
       kernel queue holds events (fs.inotify.max_queued_events; two events a file).
    2. SIGCONT; read up to the overflow line, which is written in one batch with the
       repair; then write a barrier file, whose kernel CLOSE_WRITE ends the read.
    3. One line {"path": null, "mask": ["Q_OVERFLOW"]}; the lines after it up to the
       barrier are synthetic; every file was reported with a CREATE line."""
    limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    if limit > 65536:
        pytest.skip(f"fs.inotify.max_queued_events is {limit}: too many files to overflow it")
    watch = start_watch("-r", "--json", "-e", "create,close_write", str(root))
    watch.proc.send_signal(signal.SIGSTOP)
    os.waitid(os.P_PID, watch.proc.pid, os.WSTOPPED | os.WNOWAIT)
    names = {f"f{i}" for i in range(limit)}
    for name in names:
        os.close(os.open(root / name, os.O_CREAT | os.O_WRONLY, 0o644))
    watch.proc.send_signal(signal.SIGCONT)
    before = watch.events_until(lambda e: e["path"] is None)
    assert before[-1] == {
        "path": None,
        "mask": ["Q_OVERFLOW"],
        "is_dir": False,
        "src_path": None,
        "synthetic": False,
        "cookie": 0,
    }
    write(root / "barrier")
    barrier = str(root / "barrier")
    after = watch.events_until(
        lambda e: e["path"] == barrier and e["mask"] == ["CLOSE_WRITE"] and not e["synthetic"]
    )
    repair = [e for e in after if e["path"] != barrier]
    assert repair
    assert all(e["synthetic"] for e in repair)
    assert not any(e["path"] is None for e in after)
    created = {Path(e["path"]).name for e in before + after if e["mask"] == ["CREATE"]}
    assert names <= created


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_stops_cleanly(
    start_watch: Callable[..., Watch], root: Path, signum: signal.Signals
) -> None:
    """1. A running watch that has printed one event.
    2. SIGINT or SIGTERM: exit 0, nothing on stderr (no traceback), stdout ends cleanly."""
    watch = start_watch("-r", "--json", str(root))
    write(root / "a")
    watch.events_until(lambda e: e["mask"] == ["CLOSE_WRITE"])
    watch.proc.send_signal(signum)
    code, err = watch.wait()
    assert (code, err) == (0, b"")
    while (line := watch.line()) is not None:  # whatever is left is whole JSON lines
        json.loads(line)


def test_root_deleted_exits_1_with_message(start_watch: Callable[..., Watch], root: Path) -> None:
    """1. Watch one root; remove it.
    2. The watch says on stderr that no root is left and exits 1; stdout held only
       well-formed JSON lines."""
    watch = start_watch("-r", "--json", str(root))
    root.rmdir()
    code, err = watch.wait()
    assert code == 1, err
    assert b"no root left" in err
    assert b"Traceback" not in err
    while (line := watch.line()) is not None:
        json.loads(line)


def test_broken_pipe_exits_quietly(start_watch: Callable[..., Watch], root: Path) -> None:
    """1. Read one line, then close the read end of stdout (like `| head -1`).
    2. More events make the watch write into the closed pipe: it exits 0, no traceback."""
    watch = start_watch("-r", "--json", str(root))
    write(root / "a")
    assert watch.line() is not None
    assert watch.proc.stdout is not None
    watch.proc.stdout.close()
    for i in range(3):  # several batches, in case the first write still fits a buffer
        write(root / f"more{i}")
    code, err = watch.wait()
    assert (code, err) == (0, b"")


def test_stdout_pipe_is_widened_to_a_batch(start_watch: Callable[..., Watch], root: Path) -> None:
    """1. stdout is a pipe (64 KiB by default): at READY=1 it holds 1 MiB (F_SETPIPE_SZ),
       so a backlog's batch of lines is one hand-over, not sixteen.
    2. Lines still arrive one event at a time."""
    if int(Path("/proc/sys/fs/pipe-max-size").read_text()) < 1 << 20:
        pytest.skip("fs.pipe-max-size is below 1 MiB here")
    watch = start_watch("-r", "--json", str(root))
    assert watch.proc.stdout is not None
    assert fcntl.fcntl(watch.proc.stdout.fileno(), fcntl.F_GETPIPE_SZ) == 1 << 20
    write(root / "a")
    assert json.loads(watch.line() or b"")["path"] == str(root / "a")


@pytest.mark.parametrize(
    ("make", "words"),
    [
        pytest.param(lambda p: p / "missing", b"missing", id="missing"),
        pytest.param(lambda p: touch(p / "file"), b"file", id="file"),
    ],
)
def test_unwatchable_path_exits_1(
    start_watch: Callable[..., Watch], root: Path, make: Callable[[Path], Path], words: bytes
) -> None:
    """1. PATH is missing, or a regular file.
    2. Exit 1 with a one-line message naming it, no READY=1, no traceback."""
    path = make(root)
    watch = start_watch("-r", str(path), ready=False)
    code, err = watch.wait()
    assert code == 1, err
    assert err.startswith(b"fswatchd: ")
    assert words in err
    assert b"Traceback" not in err
    assert not any(m.fields.get("READY") for m in watch.listener.messages)


@pytest.mark.parametrize(
    "args",
    [["-e", "bogus"], ["-e", "isdir"], ["-e", ""], []],
    ids=["unknown-name", "not-an-event", "empty", "no-path"],
)
def test_usage_errors_exit_2(
    start_watch: Callable[..., Watch], root: Path, args: list[str]
) -> None:
    watch = start_watch(*args, *([str(root)] if args else []), ready=False)
    code, err = watch.wait()
    assert code == 2, err
    assert b"usage:" in err
