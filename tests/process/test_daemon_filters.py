"""``fswatchd run`` end to end: include/exclude, default excludes, pruning, debounce, batch,
and renames matched as MOVED_TO on the new path or MOVED_FROM on the old one.

"Not acted on" is proven with a barrier, never a sleep: each rule has ``concurrency: 1``,
so its jobs run one at a time in the order their paths became ready, and a sentinel
file's run ends after every earlier job of that rule.
"""

from __future__ import annotations

import ast
import os
import sys
from pathlib import Path

from daemon_support import (
    guarded_ancestors,
    inotify_watch_count,
    read_lines,
    start_daemon,
    wait_until,
)

__all__ = ["start_daemon"]


def _logger(log: Path, *fields: str) -> list[str]:
    """A ``run:`` argv that appends ``fields`` (placeholders), space-joined, as one line."""
    return ["/bin/sh", "-c", 'printf "%s\\n" "$*" >> "$0"', str(log), *fields]


def _rule(name: str, root: Path, log: Path, **extra: object) -> dict[str, object]:
    return {
        "name": name,
        "watch": str(root),
        "concurrency": 1,
        "actions": [{"run": _logger(log, "{relpath}")}],
        **extra,
    }


# id -> (what the test does, in order; the relpaths expected in the log, in order)
DEFAULT_EXCLUDES = [
    ("vim-probe", "4913", False),
    ("vim-swap", ".notes.txt.swp", False),
    ("vim-swap-probe", ".notes.txt.swx", False),
    ("swap-plain", "notes.swp", False),
    ("backup", "notes.txt~", False),
    ("emacs-lock", ".#notes.txt", False),
    ("emacs-autosave", "#notes.txt#", False),
    ("rsync-temp", ".report.AbCdEf", False),
    ("download", "movie.part", False),
    ("winscp", "upload.filepart", False),
    ("glib", ".goutputstream-X1Y2Z3", False),
    ("plain", "notes.txt", True),
    ("digits", "photo1.jpg", True),
]
# include ["*.txt", "keep/**"], exclude ["secret*.txt", "!secret-ok.txt", "skip/", "build/"]
FILTERED = [
    ("included", "a.txt", True),
    ("not-included", "a.csv", False),
    ("include-dir", "keep/b.csv", True),
    ("include-dir-deep", "keep/sub/c.bin", True),
    ("excluded-dir", "skip/d.txt", False),
    ("excluded-dir-deep", "skip/sub/e.txt", False),
    ("excluded-file", "secret1.txt", False),
    ("re-included", "secret-ok.txt", True),
    ("excluded-new-dir", "build/x/f.txt", False),
]


def test_filters_default_excludes_pruning_debounce_batch(start_daemon, tmp_path: Path) -> None:
    """1. Four rules on four roots: default excludes; include/exclude with a re-include and
       pruned directories; debounce 1.5 s; batch with quiet 1.5 s.
    2. Scratch files of editors and transfer tools are ignored; rsync's and a download's
       temporary is acted on once renamed onto its final name.
    3. Only included, not excluded paths are acted on, in order; excluded directories are
       not watched at all (the kernel's fdinfo counts the watches), even one made later.
    4. Five writes to one path within the debounce make one run, with the last content.
    5. Six paths renamed in quickly make one batch: {paths} and $FSWATCHD_PATHS_FILE list
       them in order, byte-exact; the paths file is gone after the child exits.
    """
    roots = {n: tmp_path / n for n in ("defaults", "filters", "debounce", "batch")}
    logs = {n: tmp_path / f"{n}.log" for n in roots}
    for d in ("keep/sub", "skip/sub"):
        (roots["filters"] / d).mkdir(parents=True)
    for root in roots.values():
        root.mkdir(exist_ok=True)
    staging, out = tmp_path / "staging", tmp_path / "out"
    staging.mkdir()
    out.mkdir()
    dump = (
        "import os, sys; out = sys.argv[1]; f = os.environb[b'FSWATCHD_PATHS_FILE'];"
        "data = repr(([os.fsencode(a) for a in sys.argv[2:]], open(f, 'rb').read(), f));"
        "open(out + '.tmp', 'w').write(data); os.rename(out + '.tmp', out)"
    )
    rules = [
        _rule("defaults", roots["defaults"], logs["defaults"]),
        _rule(
            "filters",
            roots["filters"],
            logs["filters"],
            include=["*.txt", "keep/**"],
            exclude=["secret*.txt", "!secret-ok.txt", "skip/", "build/"],
        ),
        {
            **_rule("debounce", roots["debounce"], logs["debounce"], debounce=1.5),
            "actions": [
                {
                    "shell": 'printf "%s %s %s\\n" "$FSWATCHD_RELPATH" "$FSWATCHD_MERGED" '
                    f'"$(cat "$FSWATCHD_PATH")" >> {logs["debounce"]}'
                }
            ],
        },
        {
            "name": "batch",
            "watch": str(roots["batch"]),
            "batch": {"quiet": 1.5, "max_wait": 20},
            "actions": [{"run": [sys.executable, "-c", dump, str(out / "batch"), "{paths}"]}],
        },
    ]
    daemon = start_daemon({"rules": rules})
    # 5. the batch first: its quiet period then overlaps the rest of the test
    names = [b"b1", b"b\nnewline", bytes(range(0x80, 0x90)), b"b4", b"-b5", b"b 6"]
    for name in names:
        (staging / os.fsdecode(name)).write_bytes(b"x")
    for name in names:
        os.rename(os.fsencode(staging) + b"/" + name, os.fsencode(roots["batch"]) + b"/" + name)
    # 4. debounce
    target = roots["debounce"] / "f"
    for i in range(1, 6):
        target.write_text(f"v{i}")
    (roots["debounce"] / "sentinel").write_text("s")
    # 2. default excludes, and the rsync/download renames onto the final name
    for _, name, _ in DEFAULT_EXCLUDES:
        (roots["defaults"] / name).write_bytes(b"x")
    os.rename(roots["defaults"] / ".report.AbCdEf", roots["defaults"] / "report")
    os.rename(roots["defaults"] / "movie.part", roots["defaults"] / "movie")
    (roots["defaults"] / "zz-sentinel").write_bytes(b"x")
    # 3. include/exclude
    for _, rel, _ in FILTERED:
        (roots["filters"] / rel).parent.mkdir(parents=True, exist_ok=True)
        (roots["filters"] / rel).write_bytes(b"x")
    (roots["filters"] / "zz-sentinel.txt").write_bytes(b"x")

    want = [n.encode() for _, n, act in DEFAULT_EXCLUDES if act] + [b"report", b"movie"]
    want.append(b"zz-sentinel")
    wait_until(lambda: b"zz-sentinel" in read_lines(logs["defaults"]), "the defaults sentinel")
    assert read_lines(logs["defaults"]) == want

    want = [r.encode() for _, r, act in FILTERED if act] + [b"zz-sentinel.txt"]
    wait_until(lambda: b"zz-sentinel.txt" in read_lines(logs["filters"]), "the filters sentinel")
    assert read_lines(logs["filters"]) == want
    # defaults, debounce, batch roots + filters root, keep, keep/sub; no skip*, build*;
    # and the guards on the roots' ancestors
    guards = guarded_ancestors(*roots.values())
    assert inotify_watch_count(daemon.pid) == 3 + 3 + guards

    wait_until(lambda: b"sentinel 1 s" in read_lines(logs["debounce"]), "the debounce sentinel")
    assert read_lines(logs["debounce"]) == [b"f 5 v5", b"sentinel 1 s"]

    wait_until((out / "batch").exists, "the batch's run")
    argv, listed, paths_file = ast.literal_eval((out / "batch").read_text())
    paths = [os.fsencode(roots["batch"]) + b"/" + n for n in names]
    assert argv == paths
    assert listed == b"".join(p + b"\0" for p in paths)
    # The paths file is removed before the outcome is logged, so the line is the barrier.
    batch_ran = r"\[batch\]: run for .* exited 0"
    daemon.wait_log(batch_ran)
    assert not os.path.exists(paths_file)
    assert len(daemon.log_matches(batch_ran)) == 1
    assert daemon.stop() == 0


def test_renames_match_new_or_old_path_once_per_rule(start_daemon, tmp_path: Path) -> None:
    """1. Rules: `to` (MOVED_TO, new/*), `from` (MOVED_FROM, old/*), `both` (MOVE),
       `both-old` (MOVED_TO and MOVED_FROM, old/*).
    2. old/x -> new/x (paired): `to` sees MOVED_TO new/x with {src_path} old/x; `from`
       sees MOVED_FROM old/x ({path} is the old path, {src_path} empty); `both` runs
       once, MOVED_TO; `both-old` runs once, MOVED_FROM.
    3. A rename in from outside is a MOVED_TO; a rename out to outside a MOVED_FROM.
    4. A final rename is the barrier; no rule ran anything else.
    """
    root, outside = tmp_path / "m", tmp_path / "outside"
    for d in (root / "old", root / "new", outside):
        d.mkdir(parents=True)
    for name in ("x", "z", "s"):
        (root / "old" / name).write_bytes(b"x")
    (outside / "y").write_bytes(b"y")
    log = tmp_path / "moves.log"
    fields = ("{rule}", "{mask}", "{relpath}", "{src_path}")

    def rule(name: str, events: list[str], include: list[str] | None) -> dict[str, object]:
        extra = {"include": include} if include else {}
        return {
            "name": name,
            "watch": str(root),
            "events": events,
            "concurrency": 1,
            "actions": [{"run": _logger(log, *fields)}],
            **extra,
        }

    daemon = start_daemon(
        {
            "rules": [
                rule("to", ["MOVED_TO"], ["new/*"]),
                rule("from", ["MOVED_FROM"], ["old/*"]),
                rule("both", ["MOVE"], None),
                rule("both-old", ["MOVED_TO", "MOVED_FROM"], ["old/*"]),
            ]
        }
    )
    os.rename(root / "old" / "x", root / "new" / "x")
    os.rename(outside / "y", root / "new" / "y")
    os.rename(root / "old" / "z", outside / "z")
    r = str(root)
    want = {
        f"to MOVED_TO new/x {r}/old/x",
        "from MOVED_FROM old/x ",
        f"both MOVED_TO new/x {r}/old/x",
        "both-old MOVED_FROM old/x ",
        "to MOVED_TO new/y ",
        "both MOVED_TO new/y ",
        "from MOVED_FROM old/z ",
        "both MOVED_FROM old/z ",
        "both-old MOVED_FROM old/z ",
    }
    lines = lambda: [line.decode() for line in read_lines(log)]  # noqa: E731
    wait_until(lambda: set(lines()) >= want, lambda: f"{sorted(want)}; got {sorted(lines())}")
    os.rename(root / "old" / "s", root / "new" / "s")
    sentinel = {
        f"to MOVED_TO new/s {r}/old/s",
        "from MOVED_FROM old/s ",
        f"both MOVED_TO new/s {r}/old/s",
        "both-old MOVED_FROM old/s ",
    }
    wait_until(lambda: set(lines()) >= sentinel, "the sentinel rename")
    assert sorted(lines()) == sorted(want | sentinel)
    assert daemon.stop() == 0
