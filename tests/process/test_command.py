"""run: and shell: actions against real children: bytes in argv/env, groups, timeouts, output.

Each child that reports back is a small Python script writing what it received (argv as
bytes, ``os.environb``, cwd) with marshal to a file the test reads; comparisons are on
exact bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import marshal
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from child_support import RecordingSpawner, loop_until, process_gone, zombie_children

from fswatchd.actions import CommandAction, Job, ShellAction, install_child_watcher
from fswatchd.actions.base import MESSAGE_ID_ACTION_FAILED, MESSAGE_ID_ACTION_OK
from fswatchd.actions.env import DEFAULT_PATH, EVENT_VARIABLES
from fswatchd.actions.process import LINE_MAX
from fswatchd.events import FsEvent, Mask
from fswatchd.template import compile_template

PY = os.fsencode(sys.executable)
# /proc/self/environ is the environment as execve(2) passed it, before Python's own
# locale coercion adds LC_CTYPE to os.environ.
RECORDER = r"""
import marshal, os, sys
with open("/proc/self/environ", "rb") as f:
    env = dict(e.split(b"=", 1) for e in f.read().split(b"\0") if e)
with open(sys.argv[1], "wb") as f:
    marshal.dump(([os.fsencode(a) for a in sys.argv[2:]], env, os.getcwdb()), f)
"""

HOSTILE = {
    "semicolon": b"; rm -rf x",
    "dollar-paren": b"$(touch pwned)",
    "backticks": b"`touch pwned`",
    "quotes": b'it\'s "quoted"',
    "newline": b"line1\nline2",
    "leading-dash": b"-rf",
    "high-bytes": bytes(range(0x80, 0x100)),
    "glob-and-space": b"* ?[a] ~ {x,y} %s",
}


@pytest.fixture(autouse=True)
async def pidfd_watcher() -> AsyncIterator[None]:
    """Reap through pidfds as the daemon does; restore the previous watcher afterwards."""
    if sys.version_info >= (3, 12):
        yield
        return
    previous = asyncio.get_child_watcher()
    install_child_watcher()
    yield
    asyncio.set_child_watcher(previous)


class Lines(logging.Handler):
    """Collects fswatchd.actions records; lets a test await a line (a readiness barrier)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._changed = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self._changed.set()

    def stream(self, name: str) -> list[str]:
        return [
            r.getMessage()
            for r in self.records
            if getattr(r, "journal", {}).get("FSWATCHD_STREAM") == name
        ]

    async def wait_for(self, text: str, deadline: float = 10.0) -> None:
        async with asyncio.timeout(deadline):
            while text not in self.stream("stdout"):
                self._changed.clear()
                await self._changed.wait()


@pytest.fixture
def lines() -> Iterator[Lines]:
    handler = Lines()
    logger = logging.getLogger("fswatchd.actions")
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def make_job(
    path: bytes,
    root: bytes,
    *,
    src_path: bytes | None = None,
    mask: int = Mask.MOVED_TO | Mask.ISDIR,
    paths: tuple[bytes, ...] = (),
    rule: str = "r1",
) -> Job:
    event = FsEvent(path, int(mask), is_dir=bool(mask & Mask.ISDIR), src_path=src_path)
    return Job(rule, "ev-1", event, root, os.path.relpath(path, root), paths=paths)


def recorder_argv(out: Path, *elements: str) -> list[Any]:
    return [compile_template(e) for e in (sys.executable, "-c", RECORDER, str(out), *elements)]


def read_record(out: Path) -> tuple[list[bytes], dict[bytes, bytes], bytes]:
    with out.open("rb") as f:
        argv, env, cwd = marshal.load(f)
    return argv, env, cwd


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="3.12+ uses pidfds by default")
async def test_install_child_watcher_uses_pidfds() -> None:
    assert isinstance(asyncio.get_child_watcher(), asyncio.PidfdChildWatcher)


@pytest.mark.parametrize("name", HOSTILE.values(), ids=HOSTILE.keys())
async def test_placeholders_and_env_are_byte_exact(tmp_path: Path, name: bytes) -> None:
    """1. A path and a source path holding shell syntax and raw bytes go to the child.
    2. Every placeholder is one argv element, byte for byte; the env carries the same.
    3. Nothing is interpreted: no 'pwned' file appears in the working directory.
    """
    root = os.fsencode(tmp_path)
    path = root + b"/sub/" + name
    src = root + b"/old-" + name
    out = tmp_path / "record"
    elements = ["{path}", "{src_path}", "{name}", "{dir}", "{root}", "{relpath}", "{mask}"]
    action = CommandAction(
        recorder_argv(out, *elements, "{rule}", "pre-{name}-post", "{{literal}}"),
        timeout=30,
        cwd=str(tmp_path),
    )
    outcome = await action.run(make_job(path, root, src_path=src, rule="r;$(x)"))
    assert outcome.ok, outcome
    argv, env, _ = read_record(out)
    assert argv == [
        path,
        src,
        name,
        root + b"/sub",
        root,
        b"sub/" + name,
        b"MOVED_TO|ISDIR",
        b"r;$(x)",
        b"pre-" + name + b"-post",
        b"{literal}",
    ]
    assert env[b"FSWATCHD_PATH"] == path
    assert env[b"FSWATCHD_SRC_PATH"] == src
    assert env[b"FSWATCHD_NAME"] == name
    assert env[b"FSWATCHD_RELPATH"] == b"sub/" + name
    assert env[b"FSWATCHD_MASK"] == b"MOVED_TO|ISDIR"
    assert env[b"FSWATCHD_IS_DIR"] == b"1"
    assert env[b"FSWATCHD_SYNTHETIC"] == b"0"
    assert env[b"FSWATCHD_RULE"] == b"r;$(x)"
    assert not list(tmp_path.rglob("pwned"))


async def test_env_is_exactly_the_documented_set(tmp_path: Path) -> None:
    """1. The child sees PATH, the FSWATCHD_* variables and the rule's env, nothing else.
    2. The rule's env may set PATH but cannot override an event variable.
    """
    out = tmp_path / "record"
    action = CommandAction(
        recorder_argv(out),
        timeout=30,
        env={"GREETING": "hi there", "PATH": "/bin:/usr/bin", "FSWATCHD_PATH": "forged"},
    )
    root = os.fsencode(tmp_path)
    assert (await action.run(make_job(root + b"/f", root))).ok
    _, env, _ = read_record(out)
    assert set(env) == {b"PATH", b"GREETING", *(v.encode() for v in EVENT_VARIABLES)}
    assert env[b"PATH"] == b"/bin:/usr/bin"
    assert env[b"GREETING"] == b"hi there"
    assert env[b"FSWATCHD_PATH"] == root + b"/f"


async def test_default_path_and_cwd(tmp_path: Path) -> None:
    out = tmp_path / "record"
    action = CommandAction(recorder_argv(out), timeout=30, cwd=str(tmp_path))
    root = os.fsencode(tmp_path)
    assert (await action.run(make_job(root + b"/f", root))).ok
    _, env, cwd = read_record(out)
    assert env[b"PATH"] == DEFAULT_PATH.encode()
    assert cwd == root


async def test_paths_expands_one_element_per_path_and_paths_file(tmp_path: Path) -> None:
    """1. A batch job: {paths} becomes one argv element per path, in order.
    2. FSWATCHD_PATHS_FILE lists the same paths, each followed by NUL; it is removed after.
    """
    root = os.fsencode(tmp_path)
    paths = (root + b"/a b", root + b"/-x", root + b"/\xff\nz")
    out = tmp_path / "record"
    script = RECORDER + (
        "\nimport shutil\nshutil.copy(os.environ['FSWATCHD_PATHS_FILE'], sys.argv[1] + '.p')"
    )
    argv = [compile_template(e) for e in (sys.executable, "-c", script, str(out))]
    action = CommandAction([*argv, compile_template("--"), compile_template("{paths}")], timeout=30)
    outcome = await action.run(make_job(paths[-1], root, paths=paths))
    assert outcome.ok, outcome
    got, env, _ = read_record(out)
    assert got == [b"--", *paths]
    assert Path(str(out) + ".p").read_bytes() == b"".join(p + b"\0" for p in paths)
    assert not os.path.exists(env[b"FSWATCHD_PATHS_FILE"])


async def test_shell_gets_event_data_only_through_env(tmp_path: Path) -> None:
    """1. shell: runs /bin/sh -c with the fixed script; the path arrives in $FSWATCHD_PATH.
    2. A path holding $(...) and backticks is printed, never executed.
    """
    root = os.fsencode(tmp_path)
    path = root + b"/$(touch pwned) `touch pwned` \xfe"
    out = tmp_path / "out"
    script = f'printf "%s|%s" "$FSWATCHD_PATH" "$0" > {out}'
    action = ShellAction(script, timeout=30, cwd=str(tmp_path))
    outcome = await action.run(make_job(path, root, rule="rule-x"))
    assert outcome.ok, outcome
    assert outcome.action == "shell"
    assert out.read_bytes() == path + b"|rule-x"
    assert not list(tmp_path.rglob("pwned"))


async def test_output_is_logged_line_by_line_with_fields(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """1. stdout lines are INFO records, stderr lines WARNING, one record per line.
    2. Each carries the rule, stream, event id, path and action as journal fields.
    3. Bytes that are not UTF-8 are shown backslash-escaped; an unterminated line is kept.
    """
    caplog.set_level(logging.DEBUG, logger="fswatchd.actions")
    root = os.fsencode(tmp_path)
    script = r"printf 'one\ntwo \377\n'; printf 'oops\n' >&2; printf 'tail'"
    outcome = await ShellAction(script, timeout=30).run(make_job(root + b"/f\xff", root))
    assert outcome.ok
    output = [r for r in caplog.records if "FSWATCHD_STREAM" in getattr(r, "journal", {})]
    assert [(r.levelno, r.getMessage()) for r in output if r.levelno == logging.INFO] == [
        (logging.INFO, "one"),
        (logging.INFO, "two \\xff"),
        (logging.INFO, "tail"),
    ]
    [err] = [r for r in output if r.levelno == logging.WARNING]
    assert err.getMessage() == "oops"
    assert err.journal == {  # type: ignore[attr-defined]
        "FSWATCHD_RULE": "r1",
        "FSWATCHD_STREAM": "stderr",
        "FSWATCHD_EVENT_ID": "ev-1",
        "FSWATCHD_PATH": root + b"/f\xff",
        "FSWATCHD_ACTION": "shell",
    }
    [done] = [r for r in caplog.records if "MESSAGE_ID" in getattr(r, "journal", {})]
    assert done.levelno == logging.INFO
    assert done.journal["MESSAGE_ID"] == MESSAGE_ID_ACTION_OK  # type: ignore[attr-defined]
    assert done.journal["FSWATCHD_EXIT_STATUS"] == 0  # type: ignore[attr-defined]
    assert done.journal["FSWATCHD_MASK"] == "MOVED_TO|ISDIR"  # type: ignore[attr-defined]
    assert caplog.records.index(done) == len(caplog.records) - 1  # output lines come first


async def test_a_long_line_is_cut(tmp_path: Path, lines: Lines) -> None:
    root = os.fsencode(tmp_path)
    script = f"import sys; sys.stdout.write('x' * {3 * LINE_MAX} + '\\nnext\\n')"
    action = CommandAction(
        [compile_template(e) for e in (sys.executable, "-c", script)], timeout=30
    )
    assert (await action.run(make_job(root + b"/f", root))).ok
    first, second = lines.stream("stdout")
    assert first == "x" * LINE_MAX + " [line truncated]"
    assert second == "next"


@pytest.mark.parametrize(
    ("script", "status", "sig"),
    [("exit 7", 7, None), ("kill -KILL $$", None, signal.SIGKILL)],
    ids=["exit-7", "sigkill"],
)
async def test_exit_status_and_signal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, script: str, status: int | None, sig: int
) -> None:
    caplog.set_level(logging.INFO, logger="fswatchd.actions")
    root = os.fsencode(tmp_path)
    outcome = await ShellAction(script, timeout=30).run(make_job(root + b"/f", root))
    assert not outcome.ok
    assert (outcome.exit_status, outcome.signal, outcome.timed_out) == (status, sig, False)
    [done] = [r for r in caplog.records if "MESSAGE_ID" in getattr(r, "journal", {})]
    assert done.levelno == logging.WARNING
    assert done.journal["MESSAGE_ID"] == MESSAGE_ID_ACTION_FAILED  # type: ignore[attr-defined]
    expected = status if sig is None else -sig
    assert done.journal["FSWATCHD_EXIT_STATUS"] == expected  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("program", "reason"),
    [
        ("missing", "No such file"),
        ("not-executable", "Permission denied"),
        ("no-shebang", "Exec format error (a script needs a #! line)"),
    ],
    ids=["enoent", "eacces", "enoexec"],
)
async def test_a_child_that_cannot_start_is_a_failed_outcome(
    tmp_path: Path, program: str, reason: str
) -> None:
    """A program not found, not executable, or that execve(2) refuses (no ``#!`` line: the
    C helper learns it after the child exited 127): a failed outcome, no exit status, an
    error naming the program and the reason."""
    (tmp_path / "not-executable").write_text("#!/bin/sh\n")
    (tmp_path / "not-executable").chmod(0o644)
    (tmp_path / "no-shebang").write_text("echo hi\n")
    (tmp_path / "no-shebang").chmod(0o755)
    program = str(tmp_path / program)
    root = os.fsencode(tmp_path)
    outcome = await CommandAction([compile_template(program)], timeout=30).run(
        make_job(root + b"/f", root)
    )
    assert not outcome.ok
    assert outcome.exit_status is None
    assert outcome.error is not None and reason in outcome.error and program in outcome.error


async def test_timeout_stops_the_whole_process_group(tmp_path: Path, lines: Lines) -> None:
    """1. The child starts a grandchild (sleep 1000), prints its pid, and sleeps itself.
    2. At the timeout the group gets SIGTERM: the child and the grandchild are both gone.
    3. The outcome says timed_out, killed by SIGTERM.
    """
    spawner = RecordingSpawner()
    # The timeout leaves the shell time to start the grandchild and print its pid.
    action = ShellAction("sleep 1000 & echo $!; wait", timeout=3, grace=10, spawner=spawner)
    root = os.fsencode(tmp_path)
    outcome = await action.run(make_job(root + b"/f", root))
    assert outcome.timed_out and not outcome.ok
    assert outcome.signal == signal.SIGTERM
    assert outcome.duration < 10  # the grace period was not needed
    [grandchild] = (int(line) for line in lines.stream("stdout"))
    assert process_gone(spawner.pids[0])
    assert process_gone(grandchild)


async def test_sigkill_after_the_grace_period(tmp_path: Path, lines: Lines) -> None:
    """A child that ignores SIGTERM is killed (SIGKILL) once the grace period ends."""
    spawner = RecordingSpawner()
    script = "trap '' TERM; sleep 1000 & echo $!; while :; do wait; done"
    # The timeout leaves the shell time to set its trap before SIGTERM comes.
    action = ShellAction(script, timeout=3, grace=0.5, spawner=spawner)
    root = os.fsencode(tmp_path)
    outcome = await action.run(make_job(root + b"/f", root))
    assert outcome.timed_out
    assert outcome.signal == signal.SIGKILL
    assert 3.5 <= outcome.duration < 15
    [grandchild] = (int(line) for line in lines.stream("stdout"))
    assert process_gone(grandchild)


async def test_cancellation_stops_the_group_then_propagates(tmp_path: Path, lines: Lines) -> None:
    """1. A long child prints 'ready' (the barrier), with a grandchild in its group.
    2. The action's task is cancelled (daemon shutdown): CancelledError propagates.
    3. Child and grandchild are gone when it does.
    """
    spawner = RecordingSpawner()
    action = ShellAction(
        "sleep 1000 & echo $!; echo ready; wait", timeout=1000, grace=5, spawner=spawner
    )
    root = os.fsencode(tmp_path)
    task = asyncio.create_task(action.run(make_job(root + b"/f", root)))
    await lines.wait_for("ready")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    grandchild = int(lines.stream("stdout")[0])
    assert process_gone(spawner.pids[0], deadline=0)
    assert process_gone(grandchild)


async def test_cancellation_in_the_drain_window_stops_the_group(
    tmp_path: Path, lines: Lines
) -> None:
    """1. The child starts a grandchild that keeps its stdout open, prints its pid and
    exits 0: the runner is in its drain window (child reaped, output still open).
    2. The action's task is cancelled there: CancelledError propagates.
    3. The grandchild, a member of the child's group, is gone when it does."""
    spawner = RecordingSpawner()
    script = "sleep 1000 & echo $!; echo ready"
    action = ShellAction(script, timeout=1000, grace=5, spawner=spawner)
    root = os.fsencode(tmp_path)
    task = asyncio.create_task(action.run(make_job(root + b"/f", root)))
    await lines.wait_for("ready")
    grandchild = int(lines.stream("stdout")[0])
    try:
        # reaped: the pidfd's exit is handled on the loop
        transports = spawner.transports
        await loop_until(lambda: transports[0].get_returncode() if transports else None, 10)
        assert not task.done()  # in the drain window (1 s)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert process_gone(grandchild, deadline=5)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(grandchild, signal.SIGKILL)


async def test_a_background_grandchild_does_not_hold_the_action(tmp_path: Path) -> None:
    """A child that exits while a grandchild keeps its stdout open finishes promptly."""
    out = tmp_path / "pid"
    action = ShellAction(f"sleep 1000 & echo $! > {out}", timeout=30)
    root = os.fsencode(tmp_path)
    try:
        async with asyncio.timeout(10):
            outcome = await action.run(make_job(root + b"/f", root))
        assert outcome.ok
    finally:
        os.kill(int(out.read_text()), signal.SIGKILL)


async def test_no_zombies_after_many_actions(tmp_path: Path) -> None:
    """Forty quick children and four timed-out groups, concurrently: none is left unreaped."""
    root = os.fsencode(tmp_path)
    quick = CommandAction([compile_template("true")], timeout=30)
    slow = ShellAction("sleep 1000 & sleep 1000", timeout=0.2, grace=1)
    jobs = [quick.run(make_job(root + b"/f", root)) for _ in range(40)]
    jobs += [slow.run(make_job(root + b"/f", root)) for _ in range(4)]
    outcomes = await asyncio.gather(*jobs)
    assert sum(o.ok for o in outcomes) == 40
    assert sum(o.timed_out for o in outcomes) == 4
    assert zombie_children() == []


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
async def test_user_drop(tmp_path: Path, lines: Lines) -> None:
    """1. user: nobody runs the child as nobody, with nobody's groups (no root groups).
    2. A batch's paths file is readable by that user.
    """
    root = os.fsencode(tmp_path)
    action = ShellAction(
        'id -u; id -g; id -G; tr "\\0" "\\n" < "$FSWATCHD_PATHS_FILE"',
        timeout=30,
        user="nobody",
        cwd="/",
    )
    job = make_job(root + b"/b", root, paths=(root + b"/a", root + b"/b"))
    outcome = await action.run(job)
    assert outcome.ok, (outcome, lines.stream("stderr"))
    uid, gid, groups, *paths = lines.stream("stdout")
    assert (uid, gid, groups) == ("65534", "65534", "65534")
    assert paths == [os.fsdecode(root + b"/a"), os.fsdecode(root + b"/b")]


async def test_a_failing_spawner_is_a_failed_outcome(tmp_path: Path) -> None:
    async def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OSError(11, "Resource temporarily unavailable")

    root = os.fsencode(tmp_path)
    action = CommandAction([compile_template("true")], timeout=30, spawner=refuse)
    outcome = await action.run(make_job(root + b"/f", root))
    assert not outcome.ok
    assert outcome.error == "cannot run 'true': Resource temporarily unavailable"


async def test_output_lines_cannot_drive_a_terminal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A child printing ESC and CR: the record shows them as \\x1b and \\x0d."""
    caplog.set_level(logging.DEBUG, logger="fswatchd.actions")
    root = os.fsencode(tmp_path)
    script = r"printf 'red\033[31m over\rwritten\n'"
    outcome = await ShellAction(script, timeout=30).run(make_job(root + b"/f", root))
    assert outcome.ok
    [line] = [r for r in caplog.records if "FSWATCHD_STREAM" in getattr(r, "journal", {})]
    assert line.getMessage() == "red\\x1b[31m over\\x0dwritten"


@pytest.mark.parametrize(
    ("level", "stdout"), [(logging.INFO, "pipe"), (logging.WARNING, "/dev/null")],
    ids=["info-logged", "info-not-logged"],
)  # fmt: skip
async def test_stdout_not_logged_goes_to_dev_null(
    tmp_path: Path, lines: Lines, level: int, stdout: str
) -> None:
    """1. At INFO the child's stdout is a pipe the daemon reads and logs.
    2. At WARNING its lines would be dropped, so it is /dev/null: no pipe to read.
    stderr (WARNING) is a pipe in both cases and carries the answer.
    """
    logging.getLogger("fswatchd.actions").setLevel(level)
    root = os.fsencode(tmp_path)
    # [ is a builtin: /dev/fd/1 is the shell's own stdout, not a redirected one.
    script = (
        "if [ -p /dev/fd/1 ]; then echo pipe >&2; "
        "elif [ /dev/fd/1 -ef /dev/null ]; then echo /dev/null >&2; fi"
    )
    action = ShellAction(script, timeout=30)
    outcome = await action.run(make_job(root + b"/f", root))
    assert outcome.ok, outcome
    assert lines.stream("stderr") == [stdout]
