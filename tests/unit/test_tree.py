"""WatchTree: pure node bookkeeping (no I/O) and the packed per-file records."""

from __future__ import annotations

import pytest

from fswatchd.watch.tree import (
    KIND_OTHER,
    KIND_REG,
    KIND_SYMLINK,
    UNWATCHED,
    Node,
    WatchTree,
    is_walk_record,
    listing_items,
    pack_listing,
    pack_record,
    unpack_listing,
    unpack_record,
    walk_record,
)

ROOT = b"/r"


@pytest.fixture
def tree() -> WatchTree:
    t = WatchTree()
    t.add_root(ROOT, 1)
    return t


def test_paths_derive_from_the_node_chain(tree: WatchTree) -> None:
    a = tree.add_dir(tree.roots[ROOT], b"a", 2)
    b = tree.add_dir(a, b"b", 3)
    assert tree.path(b) == b"/r/a/b"
    assert tree.root_of(b) == ROOT
    assert tree.wds[3] is b


def test_move_is_o1_and_later_paths_follow(tree: WatchTree) -> None:
    """Re-parenting touches one node; every descendant's path follows lazily."""
    a = tree.add_dir(tree.roots[ROOT], b"a", 2)
    c = tree.add_dir(tree.add_dir(a, b"b", 3), b"c", 4)
    assert tree.path(c) == b"/r/a/b/c"
    gen = tree.gen
    assert tree.move(a, tree.roots[ROOT], b"A") is None
    assert tree.gen == gen + 1
    assert c._gen != tree.gen  # not touched by the move: invalidated lazily
    assert tree.path(c) == b"/r/A/b/c"


def test_nested_renames_in_sequence(tree: WatchTree) -> None:
    """mv a A; mv A/b A/B; mv A/B/c A/B/C: each step sees the previous one."""
    a = tree.add_dir(tree.roots[ROOT], b"a", 2)
    b = tree.add_dir(a, b"b", 3)
    c = tree.add_dir(b, b"c", 4)
    tree.move(a, tree.roots[ROOT], b"A")
    tree.move(b, a, b"B")
    tree.move(c, b, b"C")
    assert tree.path(c) == b"/r/A/B/C"
    assert set(tree.snapshot()) == {b"/r/A", b"/r/A/B", b"/r/A/B/C"}


def test_move_onto_a_dir_returns_the_displaced_node(tree: WatchTree) -> None:
    root = tree.roots[ROOT]
    p, q = tree.add_dir(root, b"p", 2), tree.add_dir(root, b"q", 3)
    displaced = tree.move(p, root, b"q")
    assert displaced is q
    assert root.dirs == {b"q": p}


def test_exchange_by_reattach(tree: WatchTree) -> None:
    """RENAME_EXCHANGE: p -> q displaces q (detached), q is put back at p."""
    root = tree.roots[ROOT]
    p, q = tree.add_dir(root, b"p", 2), tree.add_dir(root, b"q", 3)
    qs = tree.add_dir(q, b"qs", 4)
    displaced = tree.move(p, root, b"q")
    assert displaced is q
    tree.detach(q)
    assert not qs.attached
    assert tree.reattach(q, root, b"p") is None
    assert qs.attached
    assert tree.path(qs) == b"/r/p/qs"
    assert tree.path(p) == b"/r/q"


def test_detach_marks_the_subtree_and_keeps_wds_until_free(tree: WatchTree) -> None:
    a = tree.add_dir(tree.roots[ROOT], b"a", 2)
    b = tree.add_dir(a, b"b", 3)
    tree.add_dir(b, b"unwatched", UNWATCHED)
    assert sorted(tree.detach(a)) == [2, 3]
    assert not a.attached and not b.attached
    assert tree.snapshot() == {}
    assert tree.wds[3] is b  # until its IN_IGNORED
    assert tree.free(3) is b
    assert tree.free(3) is None
    assert 3 not in tree.wds


def test_add_dir_over_an_existing_name_detaches_it(tree: WatchTree) -> None:
    """A name reused (delete + mkdir): the old node is detached, the new one attached."""
    root = tree.roots[ROOT]
    old = tree.add_dir(root, b"w", 2)
    new = tree.add_dir(root, b"w", 3)
    assert not old.attached and new.attached
    assert tree.wds[2] is old  # a late DELETE_SELF/IGNORED for wd 2 resolves to it


def test_deep_tree_paths_do_not_recurse() -> None:
    tree = WatchTree()
    node = tree.add_root(ROOT, 1)
    for i in range(5000):
        node = tree.add_dir(node, b"d", i + 2)
    assert tree.path(node) == ROOT + b"/d" * 5000


def test_snapshot_lists_files_and_dirs(tree: WatchTree) -> None:
    root = tree.roots[ROOT]
    a = tree.add_dir(root, b"a", 2)
    a.files[b"f"] = 0
    root.files[b"\xff"] = pack_record(1, 2, 3, KIND_REG)
    assert tree.snapshot() == {b"/r/a": True, b"/r/a/f": False, b"/r/\xff": False}
    assert tree.count_files() == 2


@pytest.mark.parametrize(
    ("ino", "size", "mtime", "kind"),
    [
        (1, 0, 0, KIND_REG),
        (2**64 - 1, 2**63, 2**62, KIND_SYMLINK),
        (123456, 4096, -1_000_000_000, KIND_OTHER),
        (0, 5, 1_700_000_000_123_456_789, KIND_REG),
        (0, 0, 0, KIND_REG),
    ],
    ids=["small", "huge", "negative-mtime", "ino-zero", "all-zero"],
)
def test_record_round_trip(ino: int, size: int, mtime: int, kind: int) -> None:
    rec = pack_record(ino, size, mtime, kind)
    assert unpack_record(rec) == (ino, size, mtime, kind, True)
    assert unpack_record(rec & ~1) == (ino, size, mtime, kind, False)
    assert not is_walk_record(rec) and not is_walk_record(rec & ~1)


@pytest.mark.parametrize("ino", [1, 2498712, 2**32 + 7, 2**64 - 1])
@pytest.mark.parametrize("kind", [KIND_REG, KIND_SYMLINK, KIND_OTHER])
def test_walk_record_round_trip_and_is_told_apart(ino: int, kind: int) -> None:
    """A walk record keeps inode and kind, is never clean, never 0 (unknown), and is
    recognised as such; records of pack_record never are."""
    rec = walk_record(ino, kind)
    assert unpack_record(rec) == (ino, 0, 0, kind, False)
    assert is_walk_record(rec) and rec & ~1 == rec
    assert not is_walk_record(0)
    assert rec.bit_length() <= 60 or ino >= 2**57  # a 32-byte int for any real inode


def test_record_is_compact() -> None:
    """A typical record (ino < 2**24, size < 64 KiB, current mtime) fits in 4 int digits
    (120 bits: a 40-byte int); measured view cost: ~124 bytes per file, name included."""
    rec = pack_record(2**24 - 1, 2**16 - 1, 1_800_000_000_123_456_789, KIND_REG)
    assert rec.bit_length() <= 120


def test_listing_round_trip_and_unpacks_on_first_use() -> None:
    """A packed listing keeps names (any byte but NUL and "/") and walk records exactly,
    counts without unpacking, and becomes the ``files`` dict on first use."""
    items = [(b"a", walk_record(7, KIND_REG)), (b"\xff\n$(x) ;", walk_record(2**64 - 1, 1))]
    items.append((b"z" * 255, walk_record(256, KIND_OTHER)))  # a record byte is NUL
    listing = pack_listing(items)
    assert list(listing_items(listing)) == items
    assert unpack_listing(listing) == dict(items)
    t = WatchTree()
    node = t.add_root(ROOT, 1)
    node.set_listing(listing)
    assert node.listed and node.file_count() == 3 and list(node.file_items()) == items
    assert t.snapshot() == {ROOT + b"/" + name: False for name, _ in items}
    assert node.listed  # read-only uses leave it packed
    node.files[b"new"] = 0
    assert not node.listed and node.file_count() == 4
    assert unpack_listing(b"") == {} and Node(2, None, b"x").file_count() == 0
