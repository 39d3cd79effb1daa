"""Figure 2: time to ready, and memory, on a tree of many directories.

The C producer makes D leaf directories (100 per group directory) with F files each, once;
every watcher then starts on it in turn. fswatchd runs as the figure is defined, ``fswatchd
watch -r`` (default mask), and once more with ``-e ALL`` as an extra row. Ready is spawn to
the watcher's own readiness signal: fswatchd's READY=1 (sd_notify), inotifywait's "Watches
established.", our peers' READY after their walk + add_watch. For watchman it is a fresh
server (its own socket and state file) from the ``watch`` command to the answer of a
query, which watchman holds until the crawl is settled. Memory: VmRSS and VmHWM (peak) at
ready, from proc(5).
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .common import Context, interleave, kernel_limit, produce, scratch
from .proc import proc_status_kb
from .results import Metric
from .watchers import FSWATCHD, STREAM_WATCHERS, WatcherSpec, start_watcher

__all__ = ["run"]

READY = Metric("ready", "s")
RSS = Metric("rss at ready", "KiB")
PEAK = Metric("peak rss", "KiB")
CPU = Metric("cpu", "s")


def _fswatchd_default(root: Path) -> list[str]:
    return [sys.executable, "-m", "fswatchd", "watch", "-r", "--json", str(root)]


#: The figure's command, ``fswatchd watch -r``: its default mask leaves out the read-side
#: events (OPEN, ACCESS, CLOSE_NOWRITE). The streaming figures' ``-e ALL`` is the extra
#: row "fswatchd-all": with read events the walk places each watch without them first (its
#: own directory reads would flood the queue), then adds them: one more add_watch(2) per
#: directory.
_FIG2_WATCHERS = tuple(
    WatcherSpec(FSWATCHD, _fswatchd_default, None, "json", spec.available)
    if spec.name == FSWATCHD
    else spec
    for spec in STREAM_WATCHERS
) + tuple(
    WatcherSpec("fswatchd-all", spec.argv, None, "json", spec.available)
    for spec in STREAM_WATCHERS
    if spec.name == FSWATCHD
)

WATCHMAN = WatcherSpec(
    "watchman",
    lambda root: [],
    b"",
    "",
    lambda: None if shutil.which("watchman") else "watchman not installed (make bench)",
)


def _watchman(work: Path, root: Path, timeout: float) -> dict[str, float]:
    """Ready time and memory of a private watchman server watching ``root``."""
    base = [
        "watchman", f"--sockname={work}/wm.sock", f"--statefile={work}/wm.state",
        f"--logfile={work}/wm.log", f"--pidfile={work}/wm.pid", "--no-save-state",
    ]  # fmt: skip
    query = json.dumps(["query", str(root), {"expression": ["false"], "fields": ["name"]}])
    t0 = time.monotonic()
    try:
        subprocess.run([*base, "watch", str(root)], check=True, capture_output=True,
                       timeout=timeout)  # fmt: skip
        subprocess.run([*base, "-j"], input=query.encode(), check=True, capture_output=True,
                       timeout=timeout)  # fmt: skip
        ready = time.monotonic() - t0
        pid = int((work / "wm.pid").read_text())
        mem = proc_status_kb(pid)
    finally:
        subprocess.run([*base, "shutdown-server"], capture_output=True, check=False, timeout=30)
    # The server is not our child: wait until it is gone, so its watches are freed.
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return {"ready": ready, "rss": mem.get("VmRSS", 0), "peak": mem.get("VmHWM", 0)}


def _stream(spec: WatcherSpec, work: Path, root: Path, timeout: float) -> dict[str, float]:
    started = start_watcher(spec, root, work, timeout=timeout)
    mem = started.child.memory()
    started.finish()
    # VmHWM, not wait4's ru_maxrss: the kernel carries ru_maxrss across execve(2), so a
    # small child would report the harness's own size at fork time.
    return {
        "ready": started.ready_s,
        "rss": mem.get("VmRSS", 0),
        "peak": mem.get("VmHWM", 0),
        "cpu": started.child.cpu_seconds() or 0.0,
    }


def run(ctx: Context) -> None:
    """Measure figure 2 on one tree made once."""
    dirs, per_dir = ctx.sizes["ready_dirs"], ctx.sizes["ready_files_per_dir"]
    watches = dirs + math.ceil(dirs / 100) + 1
    case = f"{dirs} dirs"
    limit = kernel_limit("max_user_watches")
    if watches > 0.9 * limit:
        ctx.log(f"fig 2: {watches} watches do not fit max_user_watches={limit}; skipped")
        return
    with scratch(ctx, "ready") as work:
        root = work / "root"
        root.mkdir()
        made = produce(ctx, "mktree", root, dirs, per_dir)
        ctx.log(f"fig 2: tree of {watches} dirs, {dirs * per_dir} files made in {made:.1f} s")

        def measure(spec: WatcherSpec, run_no: int, warm: bool) -> None:
            if spec is WATCHMAN:
                got = _watchman(work, root, ctx.timeout)
            else:
                got = _stream(spec, work, root, ctx.timeout)
            res = ctx.results
            res.add(2, case, READY, spec.name, run_no, warm, got["ready"])
            res.add(2, case, RSS, spec.name, run_no, warm, got["rss"])
            res.add(2, case, PEAK, spec.name, run_no, warm, got["peak"])
            if "cpu" in got:
                res.add(2, case, CPU, spec.name, run_no, warm, got["cpu"])

        interleave(ctx, 2, case, (*_FIG2_WATCHERS, WATCHMAN), measure, (READY, RSS, PEAK))
