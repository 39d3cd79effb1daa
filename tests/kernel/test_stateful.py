"""Random file system histories against a real watcher (hypothesis stateful testing).

Each step changes a real tree (mkdir, create, write, rename file or directory, move out
to a directory outside the root, move a populated tree in, rm -rf); after each step a
barrier drains the watcher and three views must agree: the view replayed from the event
stream, ``watcher.snapshot()`` and the disk (os.scandir, links not followed).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
import tempfile

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from watchkit import Driver, real_tree, renameat2_exchange

pytestmark = [pytest.mark.timeout(120)]

NAMES = st.sampled_from([b"a", b"b", b"c", b"d\xff", b"e f", b"g\nh"])
_unique = itertools.count()


class WatchedTree(RuleBasedStateMachine):
    """A tree under a RecursiveWatcher; the rules are file system operations."""

    def __init__(self) -> None:
        super().__init__()
        self.base = os.fsencode(tempfile.mkdtemp(prefix="fswatchd-stateful-"))
        self.root = self.base + b"/tree"
        self.outside = self.base + b"/outside"
        os.mkdir(self.root)
        os.mkdir(self.outside)
        self.loop = asyncio.new_event_loop()
        self.driver = Driver([self.root])
        self.loop.run_until_complete(self.driver.__aenter__())

    def teardown(self) -> None:
        self.loop.run_until_complete(self.driver.__aexit__())
        self.loop.close()
        shutil.rmtree(self.base)

    def entries(self, want_dir: bool | None) -> list[bytes]:
        tree = real_tree([self.root])
        return sorted(p for p, d in tree.items() if want_dir is None or d == want_dir)

    def dirs(self) -> list[bytes]:
        return [self.root, *self.entries(True)]

    @rule(data=st.data(), name=NAMES)
    def mkdir(self, data: st.DataObject, name: bytes) -> None:
        parent = data.draw(st.sampled_from(self.dirs()))
        if not os.path.lexists(parent + b"/" + name):
            os.mkdir(parent + b"/" + name)

    @rule(data=st.data(), name=NAMES, size=st.integers(0, 3))
    def create(self, data: st.DataObject, name: bytes, size: int) -> None:
        path = data.draw(st.sampled_from(self.dirs())) + b"/" + name
        if not os.path.isdir(path):
            with open(path, "wb") as f:
                f.write(b"x" * size)

    @rule(data=st.data())
    def write(self, data: st.DataObject) -> None:
        files = self.entries(False)
        if files:
            with open(data.draw(st.sampled_from(files)), "ab") as f:
                f.write(b"more")

    @rule(data=st.data(), name=NAMES, is_dir=st.booleans())
    def rename(self, data: st.DataObject, name: bytes, is_dir: bool) -> None:
        sources = self.entries(is_dir)
        if not sources:
            return
        src = data.draw(st.sampled_from(sources))
        dst = data.draw(st.sampled_from(self.dirs())) + b"/" + name
        if dst == src or dst.startswith(src + b"/"):
            return
        with contextlib.suppress(OSError):  # a non-empty dir target, a dir over a file, ...
            os.rename(src, dst)

    @rule(data=st.data())
    def move_out(self, data: st.DataObject) -> None:
        entries = self.entries(None)
        if entries:
            src = data.draw(st.sampled_from(entries))
            os.rename(src, self.outside + b"/out%d" % next(_unique))

    @rule(data=st.data(), name=NAMES)
    def move_in(self, data: st.DataObject, name: bytes) -> None:
        staged = self.outside + b"/in%d" % next(_unique)
        os.makedirs(staged + b"/sub")
        with open(staged + b"/sub/f", "wb") as f:
            f.write(b"in")
        dst = data.draw(st.sampled_from(self.dirs())) + b"/" + name
        if not os.path.lexists(dst):
            os.rename(staged, dst)

    @rule(data=st.data())
    def rm_rf(self, data: st.DataObject) -> None:
        dirs = self.entries(True)
        if dirs:
            shutil.rmtree(data.draw(st.sampled_from(dirs)))

    @rule(
        data=st.data(),
        steps=st.lists(st.sampled_from(["mkdir", "mv", "swap", "rm"]), min_size=2, max_size=5),
    )
    def late_burst(self, data: st.DataObject, steps: list[str]) -> None:
        """Several directory operations before the watcher reads any of them (names reused,
        renames onto names just made, exchanges, removals): the watches placed for the
        CREATEs land on whatever has the name when they are read."""
        for step in steps:
            dirs = self.dirs()
            parent = data.draw(st.sampled_from(dirs))
            path = parent + b"/" + data.draw(NAMES)
            other = data.draw(st.sampled_from(dirs))
            with contextlib.suppress(OSError):
                if step == "mkdir":
                    os.mkdir(path)
                elif step == "mv" and other != self.root and not path.startswith(other + b"/"):
                    os.rename(other, path)
                elif step == "swap" and other != self.root and os.path.isdir(path):
                    if not path.startswith(other + b"/") and not other.startswith(path + b"/"):
                        renameat2_exchange(other, path)
                elif step == "rm" and other != self.root:
                    shutil.rmtree(other)

    @invariant()
    def views_agree(self) -> None:
        self.loop.run_until_complete(self.driver.barrier())
        self.driver.check_views()


def test_random_histories_keep_the_views_equal() -> None:
    run_state_machine_as_test(
        WatchedTree,
        # No deadline and no too-slow check: the suite's profile (tests/conftest.py).
        settings=settings(max_examples=60, stateful_step_count=12),
    )
