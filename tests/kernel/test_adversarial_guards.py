"""Adversarial real-kernel scenarios for the roots' guards, packed listings and late reads.

Each scenario changes a real tree while the watcher is not reading ("frozen"), lets it
read up to a barrier, then checks the reported events, that the replayed stream,
``snapshot()`` and the disk agree, and that ``watches_in_use`` equals the watches the
kernel holds on the watcher's inotify fd (``inotify wd:`` lines of its fdinfo).

Tests marked ``xfail(strict=True)`` pin a defect: they pass once it is fixed (and must
then lose the mark).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from watchkit import Driver, flood, hostile, real_tree, renameat2_exchange, touch

from fswatchd._inotify.fd import InotifyFd
from fswatchd.events import FsEvent, Mask
from fswatchd.watch import Root

pytestmark = pytest.mark.timeout(60)


class Fds:
    """An fd_factory that keeps the InotifyFd it built, to read the kernel's fdinfo."""

    def __init__(self) -> None:
        self.fd: InotifyFd | None = None

    def __call__(self) -> InotifyFd:
        self.fd = InotifyFd()
        return self.fd

    def kernel_watches(self) -> int:
        """Watches the kernel holds on the fd (``inotify wd:`` lines of its fdinfo)."""
        assert self.fd is not None
        with open(f"/proc/self/fdinfo/{self.fd.fileno()}") as f:
            return sum(1 for line in f if line.startswith("inotify wd:"))


def driver(roots: list[bytes | Root], fds: Fds, **kwargs: object) -> Driver:
    """A Driver whose watcher builds its fd through ``fds``."""
    return Driver(roots, fd_factory=fds, **kwargs)


def check_watches(d: Driver, fds: Fds) -> None:
    """watches_in_use == the kernel's count (call after a barrier: IGNOREDs all read)."""
    assert d.watcher.watches_in_use == fds.kernel_watches()


def check_views(d: Driver, *roots: bytes) -> None:
    """Replayed stream == snapshot() == disk, below ``roots`` only (the live ones)."""
    assert d.replay is not None
    real = real_tree(roots)

    def below(view: dict[bytes, bool]) -> dict[bytes, bool]:
        return {k: v for k, v in view.items() if any(k.startswith(r + b"/") for r in roots)}

    assert below(d.watcher.snapshot()) == real, "snapshot differs from disk"
    assert below(d.replay.view) == real, "replayed stream differs from disk"


def moved_self(path: bytes) -> object:
    """Predicate: the MOVE_SELF of root ``path``."""
    return lambda e: e.path == path and bool(e.mask & Mask.MOVE_SELF)


def probe_every_directory(root: bytes) -> set[bytes]:
    """Create ``probe`` in every directory below ``root``; return the paths created."""
    made = {p + b"/probe" for p, is_dir in real_tree([root]).items() if is_dir}
    for path in made:
        touch(path)
    return made


def not_flood(events: list[FsEvent], where: bytes) -> list[FsEvent]:
    """The events of ``events`` not about the flood's files in ``where``."""
    return [e for e in events if not (e.path or b"").startswith(where + b"/f")]


# -- guards: nested roots ------------------------------------------------------------------


async def test_nested_root_listed_first_then_its_ancestor_renamed_inside_the_outer_root(
    tmp_path: Path,
) -> None:
    """Roots a/x/b (first) and a. mv a/x a/y: b is reported moved; touch a/y/b/new is
    inside root a and must be reported there."""
    outer = bytes(tmp_path / "a")
    inner = outer + b"/x/b"
    os.makedirs(inner)
    fds = Fds()
    async with driver([inner, outer], fds) as d:
        os.rename(outer + b"/x", outer + b"/y")
        await d.until(moved_self(inner))
        touch(outer + b"/y/b/new")
        events = await d.barrier(outer)
        assert outer + b"/y/b/new" in d.paths(Mask.CREATE, events)
        check_views(d, outer)


async def test_nested_root_listed_first_removed_by_set_roots(tmp_path: Path) -> None:
    """Roots a/x/b (first) and a; set_roots([a]); touch a/x/b/new is reported under a."""
    outer = bytes(tmp_path / "a")
    inner = outer + b"/x/b"
    os.makedirs(inner)
    fds = Fds()
    async with driver([inner, outer], fds) as d:
        await d.watcher.set_roots([Root(outer)])
        touch(inner + b"/new")
        events = await d.barrier(outer)
        assert inner + b"/new" in d.paths(Mask.CREATE, events)


async def test_nested_root_outer_first_ancestor_renamed(tmp_path: Path) -> None:
    """Roots a and a/x/b (covered). mv a/x a/y; touch a/y/b/new: reported once, under
    a/y; the views agree and no watch leaks."""
    outer = bytes(tmp_path / "a")
    inner = outer + b"/x/b"
    os.makedirs(inner)
    touch(inner + b"/f0")
    fds = Fds()
    async with driver([outer, inner], fds) as d:
        os.rename(outer + b"/x", outer + b"/y")
        touch(outer + b"/y/b/new")
        events = await d.barrier()
        assert d.paths(Mask.CREATE, events) == [outer + b"/y/b/new"]
        check_views(d, outer)
        check_watches(d, fds)


@pytest.mark.parametrize("frozen", [False, True])
async def test_outer_root_removed_the_inner_root_keeps_its_guards(
    tmp_path: Path, frozen: bool
) -> None:
    """Roots a/x/b (first) and a: a's watches on a and a/x are b's guards too.
    set_roots([a/x/b]) removes them (rm_watch); the IGNORED re-guards b. Then mv a/x a/y
    (before the IGNORED is read when frozen): b is reported moved; no watch leaks."""
    outer = bytes(tmp_path / "a")
    inner = outer + b"/x/b"
    bar = bytes(tmp_path / "bar")
    os.makedirs(inner)
    os.mkdir(bar)
    fds = Fds()
    async with driver([bar, inner, outer], fds) as d:
        await d.watcher.set_roots([Root(bar), Root(inner)])
        if not frozen:
            await d.barrier()
            check_watches(d, fds)
        os.rename(outer + b"/x", outer + b"/y")
        await d.until(moved_self(inner))
        await d.barrier()
        assert d.watcher.roots_alive == 1
        check_watches(d, fds)


# -- guards: roots sharing ancestors, renamed and back, deleted ------------------------------


async def test_two_roots_share_ancestors_one_removed(tmp_path: Path) -> None:
    """Roots p/r1, p/r2 share the guard on p. set_roots([bar, p/r2]); mv p q: r2 is
    reported moved; watches_in_use equals the kernel's count throughout."""
    base = bytes(tmp_path)
    r1, r2, bar = base + b"/p/r1", base + b"/p/r2", base + b"/bar"
    for path in (r1, r2, bar):
        os.makedirs(path)
    fds = Fds()
    async with driver([bar, r1, r2], fds) as d:
        check_watches(d, fds)
        await d.watcher.set_roots([Root(bar), Root(r2)])
        await d.barrier()
        check_watches(d, fds)
        os.rename(base + b"/p", base + b"/q")
        await d.until(moved_self(r2))
        events = await d.barrier()
        assert [e.path for e in d.events if e.mask & Mask.MOVE_SELF] == [r2]
        assert not [e for e in events if e.path and e.path.startswith(base + b"/q")]
        assert d.watcher.roots_alive == 1
        check_watches(d, fds)


async def test_ancestor_renamed_the_root_under_another_ancestor_stays(tmp_path: Path) -> None:
    """Roots s/r2 and p/r1; mv p p2: r1 reported moved, r2 keeps reporting, nothing
    under p2; no watch leaks."""
    base = bytes(tmp_path)
    r1, r2 = base + b"/p/r1", base + b"/s/r2"
    os.makedirs(r1)
    os.makedirs(r2)
    fds = Fds()
    async with driver([r2, r1], fds) as d:
        os.rename(base + b"/p", base + b"/p2")
        touch(r2 + b"/f")
        touch(base + b"/p2/r1/g")
        events = await d.barrier()
        assert [(e.path, e.mask) for e in events if e.mask & Mask.MOVE_SELF] == [
            (r1, Mask.MOVE_SELF | Mask.ISDIR)
        ]
        assert d.paths(Mask.CREATE, events) == [r2 + b"/f"]
        assert d.watcher.roots_alive == 1
        check_views(d, r2)
        check_watches(d, fds)


async def test_rearm_ancestor_renamed_then_renamed_back(tmp_path: Path) -> None:
    """rearm: mv p q (root p/tree reported moved, armed); mv q p: the root is watched
    again (its anchor and a guard share p's watch); a file is reported; mv p q again is
    seen by the new guard. Watches match the kernel's at each barrier."""
    base = bytes(tmp_path)
    root, bar = base + b"/p/tree", base + b"/bar"
    os.makedirs(root)
    os.mkdir(bar)
    fds = Fds()
    async with driver([bar, root], fds, rearm=True) as d:
        os.rename(base + b"/p", base + b"/q")
        await d.until(moved_self(root))
        await d.barrier()
        check_watches(d, fds)
        os.rename(base + b"/q", base + b"/p")
        touch(root + b"/f")
        await d.until(lambda e: e.path == root + b"/f" and bool(e.mask & Mask.CLOSE_WRITE))
        os.mkdir(root + b"/sub")
        await d.barrier()
        check_watches(d, fds)
        check_views(d, root)
        os.rename(base + b"/p", base + b"/q")
        await d.until(moved_self(root))
        await d.barrier()
        check_watches(d, fds)


async def test_rearm_parent_removed_then_made_again(tmp_path: Path) -> None:
    """rearm: rm -rf p (root p/q/r with content) reports the content deleted and the
    root; mkdir -p p/q/r; touch p/q/r/g is reported; views and watches agree."""
    base = bytes(tmp_path)
    root, bar = base + b"/p/q/r", base + b"/bar"
    os.makedirs(root + b"/sub")
    os.mkdir(bar)
    touch(root + b"/f")
    fds = Fds()
    async with driver([bar, root], fds, rearm=True) as d:
        shutil.rmtree(base + b"/p")
        await d.until(lambda e: e.path == root and bool(e.mask & Mask.DELETE_SELF))
        await d.barrier()
        check_watches(d, fds)
        os.makedirs(root)
        touch(root + b"/g")
        await d.until(lambda e: e.path == root + b"/g" and bool(e.mask & Mask.CLOSE_WRITE))
        await d.barrier()
        check_views(d, root)
        check_watches(d, fds)


async def test_root_behind_a_replaced_symlink_is_not_reported_stale(tmp_path: Path) -> None:
    """Root current/up, current -> rel1. Frozen: current replaced by a link to rel2 (a
    rename), touch rel1/up/old. current/up/old does not exist: it must not be reported
    (the root is moved, like a renamed ancestor)."""
    base = bytes(tmp_path)
    os.makedirs(base + b"/rel1/up")
    os.makedirs(base + b"/rel2/up")
    os.symlink(b"rel1", base + b"/current")
    root, bar = base + b"/current/up", base + b"/bar"
    os.mkdir(bar)
    fds = Fds()
    async with driver([bar, root], fds) as d:
        os.symlink(b"rel2", base + b"/next")
        os.rename(base + b"/next", base + b"/current")
        touch(base + b"/rel1/up/old")
        await d.barrier()
        assert root + b"/old" not in d.paths(Mask.ALL)


# -- overflow resync and roots ----------------------------------------------------------------


@pytest.mark.slow
async def test_overflow_with_the_root_replaced_leaks_no_watch(tmp_path: Path) -> None:
    """Frozen: flood (overflow), mv r r_old, mkdir r. The resync reports root r gone and
    the kernel holds exactly the watches the watcher counts."""
    base = bytes(tmp_path)
    root, bar = base + b"/r", base + b"/bar"
    os.mkdir(root)
    os.mkdir(bar)
    fds = Fds()
    async with driver([bar, root], fds) as d:
        flood(bar)
        os.rename(root, base + b"/r_old")
        os.mkdir(root)
        await d.barrier()
        assert root in [e.path for e in d.events if e.mask & Mask.DELETE_SELF]
        check_watches(d, fds)


# -- packed listings ---------------------------------------------------------------------------

NAMES = [hostile(n, k) for k, n in enumerate([1, 15, 16, 200, 255])]


@pytest.mark.parametrize("op", ["rename", "rename-out", "delete", "write", "none"])
async def test_packed_listing_first_event(tmp_path: Path, op: str) -> None:
    """d holds hostile names (newline, 0xff, 255 bytes), kept packed by the walk;
    snapshot() reads them without unpacking. The first event in d is a rename of one
    file onto another, a move to another directory, a DELETE, a write or none: the
    views agree byte-exact and no watch leaks."""
    t = bytes(tmp_path / "t")
    os.makedirs(t + b"/d")
    os.makedirs(t + b"/e")
    for name in NAMES:
        touch(t + b"/d/" + name, b"x")
    fds = Fds()
    async with driver([t], fds) as d:
        expected = {t + b"/d": True, t + b"/e": True}
        expected |= {t + b"/d/" + n: False for n in NAMES}
        assert d.watcher.snapshot() == expected
        assert d.watcher.file_count == len(NAMES)
        if op == "rename":
            os.rename(t + b"/d/" + NAMES[3], t + b"/d/" + NAMES[4])
        elif op == "rename-out":
            os.rename(t + b"/d/" + NAMES[4], t + b"/e/" + NAMES[4])
        elif op == "delete":
            os.unlink(t + b"/d/" + NAMES[4])
        elif op == "write":
            touch(t + b"/d/" + NAMES[2], b"yy")
        await d.barrier()
        check_views(d, t)
        check_watches(d, fds)


async def test_packed_leaf_root(tmp_path: Path) -> None:
    """A root holding only files (a packed leaf): mkdir in it, rename a file into the new
    directory, delete another: the views agree."""
    t = bytes(tmp_path / "t")
    os.mkdir(t)
    for name in NAMES:
        touch(t + b"/" + name)
    fds = Fds()
    async with driver([t], fds) as d:
        os.mkdir(t + b"/sub")
        os.rename(t + b"/" + NAMES[0], t + b"/sub/" + NAMES[0])
        os.unlink(t + b"/" + NAMES[1])
        events = await d.barrier()
        # Read late, the scan of sub finds the file first: reported there either way.
        assert t + b"/sub/" + NAMES[0] in d.paths(Mask.CREATE | Mask.MOVED_TO, events)
        check_views(d, t)
        check_watches(d, fds)


@pytest.mark.slow
async def test_overflow_over_many_packed_directories(tmp_path: Path) -> None:
    """200 packed directories of 255-byte hostile names. Frozen: flood (overflow), move a
    file across directories, delete one, rewrite one, rename a directory: the repair
    reports them and the views agree."""
    t = bytes(tmp_path / "t")
    for i in range(200):
        os.makedirs(t + b"/d%d" % i)
        for j in range(5):
            touch(t + b"/d%d/" % i + hostile(250 + j, j), b"x")
    fds = Fds()
    async with driver([t], fds) as d:
        flood(t)
        os.rename(t + b"/d1/" + hostile(250, 0), t + b"/d2/moved")
        os.unlink(t + b"/d3/" + hostile(251, 1))
        touch(t + b"/d4/" + hostile(252, 2), b"changed")
        os.rename(t + b"/d5", t + b"/d5b")
        events = not_flood(await d.barrier(), t)
        moves = {(e.path, e.src_path) for e in events if e.mask & Mask.MOVED_TO}
        assert (t + b"/d2/moved", t + b"/d1/" + hostile(250, 0)) in moves
        assert (t + b"/d5b", t + b"/d5") in moves
        assert t + b"/d3/" + hostile(251, 1) in d.paths(Mask.DELETE, events)
        assert t + b"/d4/" + hostile(252, 2) in d.paths(Mask.CLOSE_WRITE, events)
        check_views(d, t)
        check_watches(d, fds)


# -- names reused before the watcher reads ------------------------------------------------------


def _mk(path: bytes) -> None:
    os.makedirs(path)


LATE = {
    "three-levels": lambda t: (
        _mk(t + b"/a/b/c"),
        touch(t + b"/a/b/c/f"),
        os.rename(t + b"/a", t + b"/x"),
        _mk(t + b"/a/b/c"),
        touch(t + b"/a/b/c/g"),
    ),
    "with-files": lambda t: (
        _mk(t + b"/a"),
        touch(t + b"/a/f"),
        os.rename(t + b"/a", t + b"/b"),
        _mk(t + b"/a"),
        touch(t + b"/a/g"),
    ),
    "then-mv-b-c": lambda t: (
        _mk(t + b"/a"),
        touch(t + b"/a/f"),
        os.rename(t + b"/a", t + b"/b"),
        _mk(t + b"/a"),
        os.rename(t + b"/b", t + b"/c"),
        touch(t + b"/c/h"),
    ),
    "b-replaced-by-a-file": lambda t: (
        _mk(t + b"/a"),
        os.rename(t + b"/a", t + b"/b"),
        _mk(t + b"/a"),
        os.rmdir(t + b"/b"),
        touch(t + b"/b"),
    ),
    "second-a-moved-too": lambda t: (
        _mk(t + b"/a"),
        os.rename(t + b"/a", t + b"/b"),
        _mk(t + b"/a"),
        os.rename(t + b"/a", t + b"/c"),
    ),
    "b-moved-into-a": lambda t: (
        _mk(t + b"/a"),
        os.rename(t + b"/a", t + b"/b"),
        _mk(t + b"/a"),
        os.rename(t + b"/b", t + b"/a/in"),
        touch(t + b"/a/in/f"),
    ),
    "second-a-removed": lambda t: (
        _mk(t + b"/a"),
        os.rename(t + b"/a", t + b"/b"),
        _mk(t + b"/a"),
        os.rmdir(t + b"/a"),
    ),
    "a-made-a-file": lambda t: (
        _mk(t + b"/a"),
        os.rename(t + b"/a", t + b"/b"),
        touch(t + b"/a"),
    ),
    "three-times": lambda t: (
        _mk(t + b"/a"),
        os.rename(t + b"/a", t + b"/b"),
        _mk(t + b"/a"),
        os.rename(t + b"/a", t + b"/c"),
        _mk(t + b"/a"),
        touch(t + b"/a/z"),
    ),
    "then-parent-renamed": lambda t: (
        _mk(t + b"/p/a"),
        os.rename(t + b"/p/a", t + b"/p/b"),
        _mk(t + b"/p/a"),
        os.rename(t + b"/p", t + b"/q"),
        _mk(t + b"/p/a"),
    ),
    "moved-out": lambda t: (
        _mk(t + b"/a"),
        touch(t + b"/a/f"),
        os.rename(t + b"/a", t + b"/../outside"),
        _mk(t + b"/a"),
    ),
    "new-dir-exchanged-with-a-file": lambda t: (
        _mk(t + b"/d/N"),
        touch(t + b"/d/N/in"),
        renameat2_exchange(t + b"/d/f", t + b"/d/N"),
    ),
    "new-dir-exchanged-across": lambda t: (
        _mk(t + b"/e/N"),
        touch(t + b"/e/N/in"),
        renameat2_exchange(t + b"/d/f", t + b"/e/N"),
    ),
}
#: Renames read late that moved the wrong node; the check once caught up (retry.misplaced)
#: finds the view wrong and rescans. (scenario, what went wrong before the check)
REPAIRED_LATE = {
    "swap-two-new-dirs": (
        lambda t: (
            _mk(t + b"/a"),
            _mk(t + b"/b"),
            os.rename(t + b"/a", t + b"/t"),
            os.rename(t + b"/b", t + b"/a"),
            os.rename(t + b"/t", t + b"/b"),
            touch(t + b"/a/f"),
            touch(t + b"/b/g"),
        ),
        "CREATE a and CREATE b read after the swap watch each inode under the other's "
        "name, then the three renames are applied on top: a and b stay swapped in the "
        "view, and later events in a are reported under b",
    ),
    "new-dir-exchanged-with-a-dir": (
        lambda t: (_mk(t + b"/d/N"), renameat2_exchange(t + b"/d/N", t + b"/e/D")),
        "CREATE N read late finds D at d/N (attach_wd re-parents D and watches N at "
        "e/D), then the exchange's first pair displaces that new node and the second is "
        "not recognised (add_watch sees D, not the displaced N): e/D drops out of the "
        "view, its watch kept but its events ignored",
    ),
}


@pytest.mark.parametrize(
    "scenario",
    [
        *LATE,
        *REPAIRED_LATE,
    ],
)
async def test_names_reused_before_the_watcher_reads(tmp_path: Path, scenario: str) -> None:
    """Pre-existing: d/f, e/D/sub/x. Frozen: the scenario. Then the views agree, a file
    made in every directory is reported at its path, and no watch leaks."""
    t = bytes(tmp_path / "t")
    os.makedirs(t + b"/d")
    os.makedirs(t + b"/e/D/sub")
    touch(t + b"/d/f", b"file")
    touch(t + b"/e/D/sub/x")
    fds = Fds()
    async with driver([t], fds) as d:
        (LATE[scenario] if scenario in LATE else REPAIRED_LATE[scenario][0])(t)
        await d.barrier()
        check_views(d, t)
        made = probe_every_directory(t)
        events = await d.barrier()
        assert set(d.paths(Mask.CREATE, events)) == made
        check_views(d, t)
        check_watches(d, fds)


@pytest.mark.parametrize("remove_old", [True, False], ids=["rm-old", "keep-old"])
async def test_atomic_directory_switch_read_late(tmp_path: Path, remove_old: bool) -> None:
    """Pre-existing t/current/old. Frozen: mkdir t/new; touch t/new/fresh; exchange new
    and current; (rm -rf t/new). current/fresh is in the views; touch current/later is
    reported."""
    t = bytes(tmp_path / "t")
    os.makedirs(t + b"/current")
    touch(t + b"/current/old")
    fds = Fds()
    async with driver([t], fds) as d:
        os.mkdir(t + b"/new")
        touch(t + b"/new/fresh")
        renameat2_exchange(t + b"/new", t + b"/current")
        if remove_old:
            shutil.rmtree(t + b"/new")
        await d.barrier()
        check_views(d, t)
        touch(t + b"/current/later")
        events = await d.barrier()
        assert t + b"/current/later" in d.paths(Mask.CREATE, events)
        check_watches(d, fds)
