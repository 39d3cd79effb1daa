"""sd_notify(3) helpers and the heartbeat-gated watchdog.

Pure logic (Heartbeat, Watchdog settings, the loop with an injected sender) runs in
process. Everything that touches NOTIFY_SOCKET runs in a child process against a real
listening socket (shared/tools/sdtest.py's NotifyListener), the way systemd would see it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fswatchd.sdnotify import Heartbeat, Watchdog, _one_line, watchdog_loop

sys.path.insert(0, str(Path(__file__).resolve().parents[2].parent / "shared" / "tools"))
from sdtest import NotifyListener

#: Seconds a wait for a child's message may take: Python starts slowly on a loaded machine.
WAIT = 20.0

Completed = subprocess.CompletedProcess[str]
REPO = Path(__file__).resolve().parents[2]
# Makes `import systemd` fail in the child, as on a host without systemd-python.
NO_SYSTEMD = "import sys; sys.modules['systemd'] = None\n"


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def clean_env() -> dict[str, str]:
    """This environment without the variables a service manager sets."""
    drop = {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def run_child(
    code: str, env: dict[str, str], timeout: float = 20
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# --- Heartbeat -----------------------------------------------------------------------


def test_idle_component_is_healthy_however_long_it_sleeps() -> None:
    clock = FakeClock()
    hb = Heartbeat("reader", pending=lambda: False, clock=clock)
    clock.now += 86400
    assert hb.is_alive(clock.now, window=1.5)


def test_pending_work_without_progress_is_a_wedge() -> None:
    """1. work arrives while idle; 2. the component beats once; 3. then stops."""
    clock = FakeClock()
    backlog = [False]
    hb = Heartbeat("dispatcher", pending=lambda: backlog[0], clock=clock)
    assert hb.is_alive(clock.now, window=1.5)  # idle at this check
    backlog[0] = True
    clock.now += 1.0
    assert hb.is_alive(clock.now, window=1.5)  # pending for 1 s only: not yet
    hb.beat()
    clock.now += 1.4
    assert hb.is_alive(clock.now, window=1.5)
    clock.now += 0.2
    assert not hb.is_alive(clock.now, window=1.5)  # 1.6 s pending, no progress
    hb.beat()
    assert hb.is_alive(clock.now, window=1.5)  # recovered


def test_work_arriving_just_before_a_check_is_measured_from_the_last_idle_check() -> None:
    clock = FakeClock()
    backlog = [False]
    hb = Heartbeat("reader", pending=lambda: backlog[0], clock=clock)
    clock.now += 3600  # long idle, never beat
    assert hb.is_alive(clock.now, window=1.5)
    clock.now += 1.0
    backlog[0] = True
    assert hb.is_alive(clock.now, window=1.5)


# --- Watchdog settings ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "200000"}, 0.1),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "4242"}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "4243"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
    ],
    ids=["unset", "usec", "own-pid", "other-pid", "zero", "garbage"],
)
def test_watchdog_interval_is_half_the_timeout_for_the_named_pid(
    environ: dict[str, str], expected: float | None
) -> None:
    assert Watchdog(environ, pid=4242).interval == expected


def test_status_text_is_folded_to_one_short_line() -> None:
    assert _one_line("watching\n3 roots\t ok") == "watching 3 roots ok"
    long = _one_line("x" * 1000)
    assert len(long) == 200 and long.endswith("…")


# --- watchdog_loop with an injected sender -------------------------------------------


async def test_loop_returns_at_once_without_a_watchdog() -> None:
    async with asyncio.timeout(1):
        await watchdog_loop([], Watchdog({}), send=lambda: None)


async def test_loop_feeds_while_healthy_and_stops_while_wedged() -> None:
    """1. healthy: WATCHDOG sent each interval; 2. wedged: none; 3. healthy again: resumes."""
    backlog = [False]
    hb = Heartbeat("reader", pending=lambda: backlog[0])
    sent: list[float] = []
    fed = asyncio.Event()

    def send() -> None:
        sent.append(time.monotonic())
        fed.set()

    wd = Watchdog({"WATCHDOG_USEC": "40000"})  # interval 20 ms
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(watchdog_loop([hb], wd, send=send))
        async with asyncio.timeout(10):
            while len(sent) < 3:
                fed.clear()
                await fed.wait()
        backlog[0] = True  # pending from now on, and never a beat
        await asyncio.sleep(0.1)  # 5 intervals: the wedge must be seen after 1.5
        before = len(sent)
        await asyncio.sleep(0.2)
        assert len(sent) == before, "fed the watchdog while a component was wedged"
        hb.beat()
        backlog[0] = False
        async with asyncio.timeout(10):
            while len(sent) == before:
                fed.clear()
                await fed.wait()
        task.cancel()


async def test_a_hanging_async_probe_counts_as_unhealthy() -> None:
    sent: list[int] = []
    release = asyncio.Event()

    async def stuck() -> bool:
        await release.wait()
        return True

    wd = Watchdog({"WATCHDOG_USEC": "20000"})
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(watchdog_loop([stuck], wd, send=lambda: sent.append(1)))
        await asyncio.sleep(0.15)
        assert sent == []
        task.cancel()


# --- the real protocol, through a socket ---------------------------------------------

SEND_ALL = """
from fswatchd import sdnotify
assert sdnotify.notify("X_FIRST=1")
assert sdnotify.status("watching\\n2 roots")
assert sdnotify.reloading()
assert sdnotify.ready("watching 2 roots")
assert sdnotify.stopping()
"""


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
@pytest.mark.parametrize("systemd_python", [True, False], ids=["systemd-python", "datagram"])
def test_messages_arrive_as_systemd_would_see_them(abstract: bool, systemd_python: bool) -> None:
    with NotifyListener(abstract=abstract) as nl:
        code = SEND_ALL if systemd_python else NO_SYSTEMD + SEND_ALL
        p = nl.popen([sys.executable, "-c", code], cwd=REPO)
        assert nl.wait_for(X_FIRST="1", timeout=WAIT).pid == p.pid
        assert (
            nl.wait_for(lambda m: "STATUS" in m.fields, timeout=WAIT).raw
            == "STATUS=watching 2 roots"
        )
        reload = nl.wait_for(RELOADING="1", timeout=WAIT)
        now_usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        # MONOTONIC_USEC is CLOCK_MONOTONIC of the sender: shortly before now.
        assert 0 <= now_usec - int(reload.fields["MONOTONIC_USEC"]) < 10_000_000
        assert nl.wait_for(READY="1", timeout=WAIT).fields["STATUS"] == "watching 2 roots"
        assert "STATUS" in nl.wait_for(STOPPING="1", timeout=WAIT).fields
        assert p.wait(20) == 0


@pytest.mark.parametrize("systemd_python", [True, False], ids=["systemd-python", "datagram"])
def test_unset_socket_is_a_quiet_no_op(systemd_python: bool) -> None:
    code = (NO_SYSTEMD if not systemd_python else "") + (
        "from fswatchd import sdnotify\n"
        "assert sdnotify.ready('x') is False and sdnotify.notify('WATCHDOG=1') is False\n"
    )
    r = run_child(code, clean_env())
    assert (r.returncode, r.stderr) == (0, "")


@pytest.mark.parametrize("systemd_python", [True, False], ids=["systemd-python", "datagram"])
def test_missing_socket_returns_false_with_a_warning(systemd_python: bool, tmp_path: Path) -> None:
    code = (NO_SYSTEMD if not systemd_python else "") + (
        "import logging; logging.basicConfig()\n"
        "from fswatchd import sdnotify\n"
        "assert sdnotify.ready('x') is False\n"
    )
    env = clean_env()
    env["NOTIFY_SOCKET"] = str(tmp_path / "gone")
    r = run_child(code, env)
    assert r.returncode == 0, r.stderr
    assert "sd_notify to" in r.stderr and "gone" in r.stderr


WATCHDOG_CHILD = """
import asyncio
from fswatchd.sdnotify import Heartbeat, notify, watchdog_loop
async def main():
    wedged = {wedged}
    hb = Heartbeat("reader", pending=lambda: wedged)
    notify("READY=1")
    await asyncio.wait_for(watchdog_loop([hb]), timeout=1.5)
try:
    asyncio.run(main())
except TimeoutError:
    pass
"""


def drain_until_exit(nl: NotifyListener, p: subprocess.Popen[bytes], timeout: float = WAIT) -> None:
    """Receive messages while ``p`` runs: a datagram socket holds only a few unread ones
    (net.unix.max_dgram_qlen), after which the sender blocks, as it would on systemd."""
    deadline = time.monotonic() + timeout
    while p.poll() is None:
        assert time.monotonic() < deadline, "child did not exit"
        nl.recv(0.05)
    while nl.recv(0) is not None:
        pass


def test_watchdog_cadence_through_the_socket() -> None:
    """WATCHDOG_USEC=200 ms: WATCHDOG=1 about every 100 ms for 1.5 s (loose bounds)."""
    with NotifyListener() as nl:
        p = nl.popen(
            [sys.executable, "-c", WATCHDOG_CHILD.format(wedged=False)],
            watchdog_usec=200_000,
            cwd=REPO,
        )
        nl.wait_for(READY="1", timeout=WAIT)
        drain_until_exit(nl, p)
        assert p.returncode == 0
        pings = [m for m in nl.messages if m.fields.get("WATCHDOG") == "1"]
        assert all(m.pid == p.pid for m in pings)
        assert 5 <= len(pings) <= 17, len(pings)


def test_a_wedged_component_stops_the_pings() -> None:
    """Pending work and no progress: after the first check no WATCHDOG=1 at all."""
    with NotifyListener() as nl:
        p = nl.popen(
            [sys.executable, "-c", WATCHDOG_CHILD.format(wedged=True)],
            watchdog_usec=200_000,
            cwd=REPO,
            stderr=subprocess.DEVNULL,
        )
        nl.wait_for(READY="1", timeout=WAIT)
        drain_until_exit(nl, p)
        assert p.returncode == 0, p.stderr.read() if p.stderr else ""
        pings = [m for m in nl.messages if m.fields.get("WATCHDOG") == "1"]
        # The heartbeat starts "just made progress": at most the first checks pass.
        assert len(pings) <= 2, len(pings)
