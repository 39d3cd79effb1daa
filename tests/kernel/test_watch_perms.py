"""H17: permission-denied subdirectories, with the watcher run as an unprivileged user.

The watcher runs in a child Python process under ``setpriv`` as uid/gid 65534 (nobody)
and prints one JSON line per event; the test, as root, changes the tree and reads the
lines with a deadline. The tree lives in a 0755 directory of its own under /tmp, since
pytest's base directory may not be traversable by nobody.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator

import pytest

pytestmark = [pytest.mark.root, pytest.mark.timeout(60)]

DEADLINE = 20.0
NOBODY = "65534"
PACKAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "fswatchd")

CHILD = r"""
import asyncio, json, os, sys
from fswatchd.events import Mask, mask_names
from fswatchd.watch import RecursiveWatcher, Root

async def main():
    w = RecursiveWatcher([Root(os.fsencode(sys.argv[1]))], Mask.ALL)
    await w.start()
    print(json.dumps({"ready": True}), flush=True)
    try:
        async for ev in w:
            print(json.dumps({
                "path": os.fsdecode(ev.path) if ev.path else None,
                "mask": list(mask_names(ev.mask)),
                "errno": ev.errno,
                "message": ev.message,
            }), flush=True)
    finally:
        w.close()

asyncio.run(main())
"""


@pytest.fixture
def tree() -> Iterator[str]:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv(1) to run the watcher as another user")
    base = tempfile.mkdtemp(prefix="fswatchd-h17-")
    os.chmod(base, 0o755)
    # The child runs as nobody, who may not traverse the checkout or its .venv (a clone
    # under a 0700 directory): it imports a copy of the package made readable here, with
    # the interpreter the venv points at.
    shutil.copytree(PACKAGE, os.path.join(base, "lib", "fswatchd"))
    path = os.path.join(base, "tree")
    os.mkdir(path, 0o755)
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(base)


@pytest.fixture
async def child(tree: str) -> AsyncIterator[asyncio.subprocess.Process]:
    locked = os.path.join(tree, "locked")
    os.mkdir(locked)
    with open(os.path.join(locked, "f"), "wb"):
        pass
    os.chmod(locked, 0o700)
    lib = os.path.join(os.path.dirname(tree), "lib")
    proc = await asyncio.create_subprocess_exec(
        "setpriv",
        f"--reuid={NOBODY}",
        f"--regid={NOBODY}",
        "--clear-groups",
        os.path.realpath(sys.executable),
        "-s",
        "-c",
        CHILD,
        tree,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": lib},
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()


async def read_until(proc: asyncio.subprocess.Process, pred: object) -> list[dict[str, object]]:
    """JSON lines from the child until one satisfies ``pred`` (all of them, in order)."""
    assert proc.stdout is not None and callable(pred)
    lines: list[dict[str, object]] = []
    async with asyncio.timeout(DEADLINE):
        while True:
            raw = await proc.stdout.readline()
            assert raw, f"child exited early; got {lines}"
            lines.append(json.loads(raw))
            if pred(lines[-1]):
                return lines


async def test_h17_unreadable_dirs_are_reported_and_retried(
    tree: str, child: asyncio.subprocess.Process
) -> None:
    """1. tree/locked (0700, root's) at start: an ERROR event with EACCES; start succeeds.
    2. tree/locked2 (0700) created later: another ERROR event; the rest keeps working.
    3. chmod 0755 tree/locked: the watcher retries, locked/f is reported."""
    locked = os.path.join(tree, "locked")
    start = await read_until(child, lambda line: line.get("ready"))
    del start
    first = await read_until(child, lambda line: "ERROR" in line["mask"])  # type: ignore[operator]
    assert first[-1]["path"] == locked
    assert first[-1]["errno"] == errno.EACCES
    assert "permission denied" in str(first[-1]["message"])
    os.mkdir(os.path.join(tree, "locked2"), 0o700)
    lines = await read_until(child, lambda line: "ERROR" in line["mask"])  # type: ignore[operator]
    assert lines[-1]["path"] == os.path.join(tree, "locked2")
    with open(os.path.join(tree, "ok"), "wb"):
        pass
    await read_until(child, lambda line: line["path"] == os.path.join(tree, "ok"))
    os.chmod(locked, 0o755)
    lines = await read_until(child, lambda line: line["path"] == os.path.join(locked, "f"))
    assert "CREATE" in lines[-1]["mask"]  # type: ignore[operator]
    with open(os.path.join(locked, "g"), "wb"):
        pass
    await read_until(child, lambda line: line["path"] == os.path.join(locked, "g"))
