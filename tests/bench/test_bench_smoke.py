"""The benchmark suite, run end to end at tiny sizes so it cannot rot.

Runs bench/run.py as a child process with one run per figure and only the watchers that
need nothing from ``make bench``: fswatchd itself, inotifywait (a system dependency), the
stdlib reference reader and the stdlib, C spawn and aiohttp floors. Figures whose fswatchd
part is not available must still produce their peers' numbers and an "n/a" note, never an
error.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

__all__: list[str] = []

REPO = Path(__file__).resolve().parents[2]
PEERS = "fswatchd,inotifywait,python-ref,asyncio-spawn,aiohttp-floor,spawn-floor"
TINY = {
    "drain_files": 400, "drain_dirs": 10, "ready_dirs": 100, "burst_files": 600,
    "burst_dirs": 10, "repair_files": 500, "latency_samples": 5, "commands": 20,
    "webhooks": 40, "memory_events": 10_000,
}  # fmt: skip


def _fswatchd_has(subcommand: str) -> bool:
    argv = [sys.executable, "-m", "fswatchd", subcommand, "--help"]
    return subprocess.run(argv, capture_output=True, check=False).returncode == 0


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, object]]:
    """(printed table, JSON document) of one tiny run of every figure."""
    tmp = tmp_path_factory.mktemp("bench")
    out = tmp / "runs.json"
    argv = [
        sys.executable, str(REPO / "bench" / "run.py"), "--sizes", "small", "--runs", "1",
        "--warmup", "0", "--timeout", "15", "--quiet", "--peers", PEERS, "--json", str(out),
        *(f"--set={k}={v}" for k, v in TINY.items()),
    ]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=28, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, json.loads(out.read_text())


def _values(doc: dict[str, object], figure: int, watcher: str) -> list[object]:
    samples = doc["samples"]
    assert isinstance(samples, list)
    return [
        s["value"]
        for s in samples
        if s["figure"] == figure and s["watcher"] == watcher and s["value"] is not None
    ]


@pytest.mark.timeout(30)
def test_every_figure_reports(smoke: tuple[str, dict[str, object]]) -> None:
    """1. Every figure 1-7 appears in the JSON medians.
    2. The table names each figure and the ratio column."""
    table, doc = smoke
    medians = doc["medians"]
    assert isinstance(medians, list)
    assert {m["figure"] for m in medians} == set(range(1, 8))
    assert "fswatchd/peer" in table


def test_reference_peers_measured(smoke: tuple[str, dict[str, object]]) -> None:
    """1. The stdlib reader and inotifywait have drain, ready and burst values.
    2. The asyncio, spawn and aiohttp floors have latency, commands/s and webhook values."""
    _, doc = smoke
    for figure in (1, 2, 3):
        assert _values(doc, figure, "python-ref"), figure
        assert _values(doc, figure, "inotifywait"), figure
    assert _values(doc, 4, "asyncio-spawn")
    assert _values(doc, 5, "spawn-floor")
    assert _values(doc, 6, "aiohttp-floor")


def test_fswatchd_measured_or_marked_na(smoke: tuple[str, dict[str, object]]) -> None:
    """1. Where fswatchd's subcommand exists, its figures have values.
    2. Where it does not, they carry the "not available" note instead."""
    _, doc = smoke
    samples = doc["samples"]
    assert isinstance(samples, list)
    for figures, sub in (((1, 2, 3), "watch"), ((4, 5, 6, 7), "run")):
        for figure in figures:
            if _fswatchd_has(sub):
                assert _values(doc, figure, "fswatchd"), figure
            else:
                notes = {s["note"] for s in samples
                         if s["figure"] == figure and s["watcher"] == "fswatchd"}  # fmt: skip
                assert f"fswatchd {sub}" in " ".join(n or "" for n in notes), figure


def test_burst_view_checked(smoke: tuple[str, dict[str, object]]) -> None:
    """After the overflow repair, fswatchd's replayed view equals the tree (when watch exists)."""
    _, doc = smoke
    if not _fswatchd_has("watch"):
        pytest.skip("fswatchd watch not available")
    samples = doc["samples"]
    assert isinstance(samples, list)
    equal = [s["value"] for s in samples if s["figure"] == 3 and s["watcher"] == "fswatchd"
             and s["metric"] == "view == tree"]  # fmt: skip
    assert equal and all(v == 1.0 for v in equal)


def test_profile_commands_reports_rate_and_cpu() -> None:
    """bench/profile_commands.py, 20 commands, this checkout: one line for the run and a
    median, with a rate, the daemon's and its actions' CPU per command, the machine's busy
    share, the rate that CPU allows and the most actions running."""
    argv = [
        sys.executable, str(REPO / "bench" / "profile_commands.py"), "--runs", "1",
        "--commands", "20", "--source", str(REPO),
    ]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    [median] = [line for line in proc.stdout.splitlines() if line.startswith("median ")]
    figures = json.loads(median.split(": ", 1)[1])
    assert set(figures) == {
        "rate", "user_us", "sys_us", "children_us", "busy_pct", "full_cpu_rate", "max_running",
    }  # fmt: skip
    assert figures["rate"] > 0 and figures["max_running"] >= 1
    assert 0 <= figures["busy_pct"] <= 100 and figures["full_cpu_rate"] >= 0


def test_profile_webhooks_reports_rate_and_cpu() -> None:
    """bench/profile_webhooks.py, 40 POSTs, this checkout and the aiohttp floor: a line per
    run and a median for each, with a rate, CPU per POST, every POST on at most 16
    connections and no overflow."""
    argv = [
        sys.executable, str(REPO / "bench" / "profile_webhooks.py"), "--runs", "1",
        "--webhooks", "40", "--source", str(REPO), "--floor",
    ]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    medians = [line for line in proc.stdout.splitlines() if line.startswith("median ")]
    assert [m.split(":")[0] for m in medians] == [f"median {REPO}", "median aiohttp-floor"]
    for median in medians:
        figures = json.loads(median.split(": ", 1)[1])
        assert set(figures) == {
            "rate", "user_us", "sys_us", "receiver_us", "per_receiver", "connections",
            "overflows",
        }  # fmt: skip
        assert figures["rate"] > 0 and 1 <= figures["connections"] <= 16
        assert figures["overflows"] == 0
