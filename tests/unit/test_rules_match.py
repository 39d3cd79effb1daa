"""The matcher and the RuleSet's watch plan: filters, default excludes, file roots, renames,
pruning and roots(). Pure: rule sets are built from fabricated rules and events."""

from __future__ import annotations

from typing import Any

import pytest

from fswatchd.events import FsEvent, Mask
from fswatchd.rules import DEFAULT_EXCLUDES, Rule, RuleSet, match

CW = int(Mask.CLOSE_WRITE)
ISDIR = int(Mask.ISDIR)


def rule(name: str = "r", watch: Any = "/w", **fields: Any) -> Rule:
    fields.setdefault("actions", [{"run": ["/bin/true"]}])
    return Rule.model_validate({"name": name, "watch": watch, **fields})


def one(**fields: Any) -> RuleSet:
    return RuleSet.from_rules([rule(**fields)])


def names(ruleset: RuleSet, event: FsEvent) -> list[str]:
    return [m.rule.name for m in match(ruleset, event)]


def accepted(ruleset: RuleSet, relpath: bytes, is_dir: bool = False) -> bool:
    mask = CW | (ISDIR if is_dir else 0)
    return bool(match(ruleset, FsEvent(b"/w/" + relpath, mask, is_dir=is_dir)))


# (include, exclude, relpath, is_dir, matches)
FILTERS = [
    ((), (), b"a.csv", False, True),
    (("*.csv",), (), b"a.csv", False, True),
    (("*.csv",), (), b"d/e/a.csv", False, True),
    (("*.csv",), (), b"a.txt", False, False),
    (("/a.csv",), (), b"a.csv", False, True),
    (("/a.csv",), (), b"d/a.csv", False, False),
    (("d/*.csv",), (), b"d/a.csv", False, True),
    (("d/*.csv",), (), b"d/e/a.csv", False, False),
    (("d/*.csv",), (), b"x/d/a.csv", False, False),
    (("reports/**",), (), b"reports/x", False, True),
    (("reports/**",), (), b"reports/a/b/c.pdf", False, True),
    (("reports/**",), (), b"reports/a", True, True),
    (("reports/**",), (), b"other/reports/x", False, False),
    (("reports/**",), (), b"reports", False, False),
    (("**/x.csv",), (), b"x.csv", False, True),
    (("**/x.csv",), (), b"a/b/x.csv", False, True),
    (("*.csv", "!secret.csv"), (), b"secret.csv", False, False),
    (("build/",), (), b"build", True, True),
    (("build/",), (), b"build", False, False),
    ((), ("*.tmp",), b"a.tmp", False, False),
    ((), ("*.tmp",), b"d/a.tmp", False, False),
    ((), ("*.tmp",), b"a.tmp.csv", False, True),
    ((), (".git/",), b".git/config", False, False),
    ((), (".git/",), b".git", True, False),
    ((), (".git/",), b".git", False, True),
    ((), ("cache",), b"a/cache/x", False, False),
    (("*.csv",), ("old/",), b"old/a.csv", False, False),
    (("*.csv",), (), b"\xff\xfe.csv", False, True),
    (("*.csv",), (), b"a\nb.csv", False, True),
    (("*.csv",), (), b"$(rm -rf ~); `x` |y.csv", False, True),
    (("\xff*",), (), b"\xff.bin", False, False),
]


@pytest.mark.parametrize(
    ("include", "exclude", "relpath", "is_dir", "expected"),
    FILTERS,
    ids=[
        f"{'+'.join(i) or '-'}|{'+'.join(e) or '-'}|{r!r}{'/' if d else ''}"
        for i, e, r, d, _ in FILTERS
    ],
)
def test_include_exclude(
    include: tuple[str, ...], exclude: tuple[str, ...], relpath: bytes, is_dir: bool, expected: bool
) -> None:
    assert accepted(one(include=include, exclude=exclude), relpath, is_dir) is expected


#: One scratch name per default pattern: every pattern must be exercised.
SCRATCH = {
    "4913": "4913",
    "*.swp": "notes.swp",
    ".*.sw[a-p]": ".notes.txt.swo",
    ".*.swx": ".notes.txt.swx",
    ".*.swpx": ".notes.txt.swpx",
    "*~": "notes.txt~",
    ".#*": ".#notes.txt",
    "\\#*#": "#notes.txt#",
    ".*.??????": ".data.csv.Ab3xZ9",
    "*.filepart": "upload.csv.filepart",
    "*.part": "movie.mkv.part",
    ".goutputstream-??????": ".goutputstream-KX81Q2",
}


def test_every_default_exclude_has_an_example() -> None:
    assert set(SCRATCH) == set(DEFAULT_EXCLUDES)


@pytest.mark.parametrize("name", list(SCRATCH.values()), ids=list(SCRATCH))
def test_default_excludes_drop_scratch_files(name: str) -> None:
    raw = name.encode()
    assert not accepted(one(), raw)
    assert not accepted(one(), b"deep/dir/" + raw)
    assert accepted(one(default_excludes=False), raw)


@pytest.mark.parametrize(
    ("relpath", "is_dir"),
    [
        (b"notes.txt", False),
        (b".bashrc", False),
        (b".cache.ab", False),
        (b".config.backup", True),  # looks like an rsync temp, but directories are kept
        (b"x.part/data.csv", False),  # only the file's own name is checked
        (b"4913/data.csv", False),
    ],
    ids=["plain", "dotfile", "short-suffix", "dir-like-rsync", "file-in-part-dir", "in-4913-dir"],
)
def test_default_excludes_keep_real_names(relpath: bytes, is_dir: bool) -> None:
    assert accepted(one(), relpath, is_dir)


@pytest.mark.parametrize(
    ("path", "recursive", "expected"),
    [
        (b"/w/a", True, b"a"),
        (b"/w/d/e/a", True, b"d/e/a"),
        (b"/w/a", False, b"a"),
        (b"/w/d/a", False, None),
        (b"/wx/a", True, None),
        (b"/other/a", True, None),
        (b"/w", True, b""),
    ],
    ids=["child", "deep", "flat-child", "flat-grandchild", "sibling-prefix", "outside", "root"],
)
def test_path_must_be_under_the_root(path: bytes, recursive: bool, expected: bytes | None) -> None:
    found = match(one(recursive=recursive, events="ALL"), FsEvent(path, CW))
    assert [m.relpath for m in found] == ([] if expected is None else [expected])
    assert all(m.root == b"/w" for m in found)


def test_root_itself_only_without_include() -> None:
    event = FsEvent(b"/w", int(Mask.DELETE_SELF), is_dir=True)
    assert names(one(events="ALL"), event) == ["r"]
    assert names(one(events="ALL", include=["*"]), event) == []


def test_filesystem_root_directory() -> None:
    found = match(one(watch="/"), FsEvent(b"/etc/passwd", CW))
    assert [(m.root, m.relpath) for m in found] == [(b"/", b"etc/passwd")]


def test_event_mask_must_intersect_rule_events() -> None:
    ruleset = one(events=["CREATE"])
    assert names(ruleset, FsEvent(b"/w/a", CW)) == []
    assert names(ruleset, FsEvent(b"/w/d", int(Mask.CREATE) | ISDIR, is_dir=True)) == ["r"]


@pytest.mark.parametrize(
    "event",
    [
        FsEvent(None, int(Mask.Q_OVERFLOW)),
        FsEvent(b"/w/d", int(Mask.ERROR) | ISDIR, is_dir=True, errno=28, message="x"),
        FsEvent(b"/w", int(Mask.IGNORED)),
        FsEvent(b"/w", int(Mask.UNMOUNT)),
    ],
    ids=["overflow", "error", "ignored", "unmount"],
)
def test_watcher_reports_match_no_rule(event: FsEvent) -> None:
    assert match(one(events="ALL"), event) == []


def test_rules_match_in_order_once_each() -> None:
    ruleset = RuleSet.from_rules(
        [
            rule("b", ["/w", "/w/sub"]),
            rule("a", "/w/sub", include=["*.csv"]),
            rule("c", "/elsewhere"),
        ]
    )
    found = match(ruleset, FsEvent(b"/w/sub/x.csv", CW))
    assert [(m.rule.name, m.root, m.relpath) for m in found] == [
        ("b", b"/w", b"sub/x.csv"),
        ("a", b"/w/sub", b"x.csv"),
    ]


def file_rules(**fields: Any) -> RuleSet:
    return RuleSet.from_rules([rule(watch="/etc/app.conf", **fields)], file_roots=["/etc/app.conf"])


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (FsEvent(b"/etc/app.conf", CW), True),
        # an editor, sed -i or logrotate replacing the file: a rename onto the name
        (FsEvent(b"/etc/app.conf", int(Mask.MOVED_TO), src_path=b"/etc/sedX1b2c3"), True),
        (FsEvent(b"/etc/app.conf", int(Mask.MOVED_TO)), True),
        (FsEvent(b"/etc/app.conf.bak", CW), False),
        (FsEvent(b"/etc/other", CW), False),
        (FsEvent(b"/etc/sub/app.conf", CW), False),
        (FsEvent(b"/etc", CW, is_dir=True), False),
    ],
    ids=["write", "replaced-by-rename", "moved-in", "similar-name", "sibling", "deeper", "dir"],
)
def test_file_root_follows_the_name(event: FsEvent, expected: bool) -> None:
    found = match(file_rules(), event)
    assert bool(found) is expected
    if expected:
        assert (found[0].root, found[0].relpath, found[0].event) == (b"/etc", b"app.conf", event)


def test_file_root_is_watched_through_its_directory() -> None:
    ruleset = file_rules()
    assert ruleset.roots() == [(b"/etc", False)]
    assert ruleset.should_watch(b"/etc") is True
    assert ruleset.should_watch(b"/etc/sub") is False


def test_file_root_named_like_scratch_is_not_default_excluded() -> None:
    ruleset = RuleSet.from_rules([rule(watch="/etc/x~")], file_roots=["/etc/x~"])
    assert names(ruleset, FsEvent(b"/etc/x~", CW)) == ["r"]


MF = int(Mask.MOVED_FROM)
MT = int(Mask.MOVED_TO)

# (rule events, include, old path, new path, expected (mask, path, relpath) or None)
RENAMES = [
    ("MOVED_TO", (), b"/w/a.csv", b"/w/b.csv", (MT, b"/w/b.csv", b"b.csv")),
    ("MOVED_FROM", (), b"/w/a.csv", b"/w/b.csv", (MF, b"/w/a.csv", b"a.csv")),
    ("MOVE", (), b"/w/a.csv", b"/w/b.csv", (MT, b"/w/b.csv", b"b.csv")),
    ("MOVED_TO", (), b"/o/a.csv", b"/w/a.csv", (MT, b"/w/a.csv", b"a.csv")),
    ("MOVED_FROM", (), b"/w/a.csv", b"/o/a.csv", (MF, b"/w/a.csv", b"a.csv")),
    ("MOVE", (), b"/w/a.csv", b"/o/a.csv", (MF, b"/w/a.csv", b"a.csv")),
    ("MOVED_TO", (), b"/w/a.csv", b"/o/a.csv", None),
    ("MOVED_FROM", (), b"/o/a.csv", b"/w/a.csv", None),
    ("MOVE", ("*.csv",), b"/w/a.part", b"/w/a.csv", (MT, b"/w/a.csv", b"a.csv")),
    ("MOVE", ("*.csv",), b"/w/a.csv", b"/w/a.txt", (MF, b"/w/a.csv", b"a.csv")),
    ("MOVE", ("*.csv",), b"/w/a.txt", b"/w/b.txt", None),
    ("CLOSE_WRITE", (), b"/w/a.csv", b"/w/b.csv", None),
]


@pytest.mark.parametrize(
    ("events", "include", "old", "new", "expected"),
    RENAMES,
    ids=[
        "to-new-path",
        "from-old-path",
        "both-one-match",
        "into-root",
        "out-of-root",
        "both-out-of-root",
        "to-only-out-of-root",
        "from-only-into-root",
        "include-new-name",
        "include-old-name",
        "include-neither",
        "not-listening",
    ],
)
def test_paired_rename(
    events: str,
    include: tuple[str, ...],
    old: bytes,
    new: bytes,
    expected: tuple[int, bytes, bytes] | None,
) -> None:
    ruleset = one(events=events, include=include)
    event = FsEvent(new, MT | ISDIR, is_dir=True, src_path=old, cookie=7)
    found = match(ruleset, event)
    if expected is None:
        assert found == []
        return
    (hit,) = found
    mask, path, relpath = expected
    assert (hit.event.mask, hit.event.path, hit.relpath) == (mask | ISDIR, path, relpath)
    assert hit.event.src_path == (old if mask == MT else None)
    assert (hit.event.cookie, hit.event.is_dir) == (7, True)


def test_unpaired_moved_from_matches_its_own_path() -> None:
    found = match(one(events="MOVED_FROM"), FsEvent(b"/w/a", MF))
    assert [(m.relpath, m.event.mask) for m in found] == [(b"a", MF)]


def test_one_rename_two_rules_each_see_their_side() -> None:
    ruleset = RuleSet.from_rules(
        [rule("src", "/a", events="MOVE"), rule("dst", "/b", events="MOVE")]
    )
    found = match(ruleset, FsEvent(b"/b/x", MT, src_path=b"/a/x"))
    assert [(m.rule.name, m.event.mask, m.event.path) for m in found] == [
        ("src", MF, b"/a/x"),
        ("dst", MT, b"/b/x"),
    ]


@pytest.mark.parametrize(
    ("rules", "path", "expected"),
    [
        ([rule(exclude=[".git/"])], b"/w", True),
        ([rule(exclude=[".git/"])], b"/w/src", True),
        ([rule(exclude=[".git/"])], b"/w/.git", False),
        ([rule(exclude=[".git/"])], b"/w/.git/objects", False),
        ([rule(exclude=[".git/"])], b"/w/sub/.git", False),
        ([rule(exclude=["*.tmp"])], b"/w/build.tmp", False),
        ([rule(exclude=["/build"])], b"/w/x/build", True),
        ([rule(recursive=False)], b"/w/sub", False),
        ([rule()], b"/elsewhere", False),
        ([rule()], b"/wx", False),
        ([rule()], b"/w/.config.backup", True),
        ([rule("a", exclude=["build/"]), rule("b")], b"/w/build", True),
        ([rule("a", exclude=["build/"]), rule("b", exclude=["build"])], b"/w/build", False),
        (
            [rule("a", exclude=["build/"]), rule("b", "/w/build", recursive=False)],
            b"/w/build",
            True,
        ),
        ([rule("a", exclude=["x/"]), rule("b", "/w/x/y")], b"/w/x", False),
    ],
    ids=[
        "root",
        "plain-dir",
        "excluded",
        "below-excluded",
        "excluded-any-depth",
        "excluded-by-name-pattern",
        "anchored-exclude-elsewhere",
        "below-flat-root",
        "outside",
        "sibling-prefix",
        "default-excludes-never-prune",
        "other-rule-wants-it",
        "every-rule-excludes",
        "it-is-another-rules-root",
        "nested-root-does-not-unprune-parent",
    ],
)
def test_should_watch(rules: list[Rule], path: bytes, expected: bool) -> None:
    assert RuleSet.from_rules(rules).should_watch(path) is expected


def test_excluded_dir_events_do_not_match() -> None:
    ruleset = one(exclude=[".git/"], events="ALL")
    assert names(ruleset, FsEvent(b"/w/.git", int(Mask.CREATE) | ISDIR, is_dir=True)) == []
    assert names(ruleset, FsEvent(b"/w/.git/index", CW)) == []


@pytest.mark.parametrize(
    ("rules", "file_roots", "expected"),
    [
        ([rule(watch=["/b", "/a"])], [], [(b"/a", True), (b"/b", True)]),
        ([rule("x", "/a", recursive=False), rule("y", "/a")], [], [(b"/a", True)]),
        ([rule("x", "/a"), rule("y", "/a/b/c")], [], [(b"/a", True)]),
        (
            [rule("x", "/a", recursive=False), rule("y", "/a/b")],
            [],
            [(b"/a", False), (b"/a/b", True)],
        ),
        (
            [rule("x", "/a", exclude=["b/"]), rule("y", "/a/b/c")],
            [],
            [(b"/a", True), (b"/a/b/c", True)],
        ),
        ([rule("x", "/a"), rule("y", "/a/f")], ["/a/f"], [(b"/a", True)]),
        ([rule("x", ["/etc/a", "/etc/b"])], ["/etc/a", "/etc/b"], [(b"/etc", False)]),
        ([rule("x", "/")], [], [(b"/", True)]),
    ],
    ids=[
        "sorted",
        "recursive-wins",
        "nested-under-recursive",
        "nested-under-flat",
        "nested-under-pruned",
        "file-in-recursive-root",
        "two-files-one-dir",
        "slash",
    ],
)
def test_roots(
    rules: list[Rule], file_roots: list[str], expected: list[tuple[bytes, bool]]
) -> None:
    assert RuleSet.from_rules(rules, file_roots=file_roots).roots() == expected


def test_mask_is_the_union_of_rule_events() -> None:
    ruleset = RuleSet.from_rules([rule("a", events="CREATE"), rule("b", events="DELETE")])
    assert ruleset.mask == int(Mask.CREATE | Mask.DELETE)
    assert one().mask == int(Mask.CLOSE_WRITE | Mask.MOVED_TO)
