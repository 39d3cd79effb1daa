"""``fswatchd run`` end to end: readiness, hostile names byte-exact, config errors at start.

Every test runs the real daemon as a subprocess (daemon_support.start_daemon) and proves
behaviour by an effect a real child process leaves behind: a file it writes, a line in
the daemon's log, an sd_notify message.
"""

from __future__ import annotations

import ast
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from daemon_support import (
    Daemon,
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


# -- 1. readiness -----------------------------------------------------------------------


def test_ready_only_after_every_watch_is_in_place(start_daemon, tmp_path: Path) -> None:
    """1. A tree of 300 directories (one 12 deep) exists before start.
    2. READY=1 arrives with STATUS= naming the watch count, which the kernel confirms.
    3. Files created at once in the root, the deepest and the last directories are acted on.
    4. A later STATUS= update reports the events.
    5. The first log line gives the daemon's pid (for `kill -HUP` from a terminal).
    """
    root = tmp_path / "tree"
    deep = root.joinpath(*(f"d{i}" for i in range(12)))
    deep.mkdir(parents=True)
    wide = [root / "wide" / f"w{i:03}" for i in range(287)]
    for d in wide:
        d.mkdir(parents=True)
    log = tmp_path / "acted.log"
    daemon = start_daemon(
        {
            "rules": [
                {"name": "r", "watch": str(root), "actions": [{"run": _logger(log, "{relpath}")}]}
            ]
        }
    )
    targets = [root / "top", deep / "deepest", wide[-1] / "last", wide[0] / "first"]
    for path in targets:
        path.write_bytes(b"x")
    expected = {os.fsencode(p.relative_to(root)) for p in targets}
    wait_until(lambda: set(read_lines(log)) >= expected, "an action for every file")
    watches = 1 + 12 + 1 + len(wide) + guarded_ancestors(root)  # directories, guards
    assert daemon.ready is not None
    assert f"{watches} watches" in daemon.ready.fields["STATUS"]
    assert inotify_watch_count(daemon.pid) == watches
    # A status update sent before the daemon had read every write may still say fewer.
    daemon.notified(
        lambda m: "READY" not in m.fields and re.search(r"\b4 events\b", m.fields.get("STATUS", ""))
    )
    assert daemon.log_matches(rf"INFO fswatchd: starting with .* \(pid {daemon.pid}\)$")
    assert daemon.stop() == 0


# -- 2. hostile names -------------------------------------------------------------------

HOSTILE = {
    "semicolon-rm": b"x; rm -rf canary",
    "command-subst": b"$(touch pwned)",
    "backticks": b"`touch pwned`",
    "quotes": b'it\'s "quoted"',
    "newline": b"new\nline; touch pwned",
    "leading-dash": b"-rf",
    "high-bytes": bytes(range(0x80, 0x100)),
    "ifs-and-vars": b"${IFS}$HOME $0 $1",
    "glob": b"*?[a-z]",
    "backslash-tab": b"back\\slash\ttab",
}
#: The documented PATH of children whose rule does not set one (docs/actions.md).
CHILD_PATH = b"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ENV_HOSTILE = "$(touch pwned) `touch pwned` ; rm -rf canary 'q' \"q\""

DUMP = """\
import hashlib, os, sys
argv = [os.fsencode(a) for a in sys.argv[1:]]
out = os.environb[b"DUMP_OUT"]
key = hashlib.sha256(argv[0] + b"\\0" + os.environb[b"FSWATCHD_PATH"]).hexdigest().encode()
with open(os.path.join(out, key + b".tmp"), "wb") as f:
    f.write(repr((argv, dict(os.environb))).encode())
os.rename(os.path.join(out, key + b".tmp"), os.path.join(out, key))
"""


def _dump_of(out: Path, kind: bytes, path: bytes) -> tuple[list[bytes], dict[bytes, bytes]]:
    key = hashlib.sha256(kind + b"\0" + path).hexdigest()
    argv, env = ast.literal_eval((out / key).read_text())
    return argv, env


def _finished_dumps(out: Path) -> list[str]:
    return [n for n in os.listdir(out) if not n.endswith(".tmp")]


def _pwned(places: list[Path]) -> list[str]:
    found = []
    for place in places:
        found += [str(p) for p in place.glob("pwned")]
    return found + [str(p) for p in places[0].rglob("pwned")]


def test_hostile_names_reach_children_byte_exact(start_daemon, tmp_path: Path) -> None:
    """1. Files with hostile names are renamed from src/ to dst/ in the watched tree.
    2. A run: action gets every placeholder as one exact argv element and the event in
       its environment; its environment is exactly PATH, the rule's env: and FSWATCHD_*.
    3. A shell: action passes "$FSWATCHD_*" on; the values arrive unchanged.
    4. Nothing was interpreted: no `pwned` file anywhere, the canary directory survives.
    """
    root, out = tmp_path / "w", tmp_path / "out"
    for d in (root / "src", root / "dst", out, tmp_path / "canary"):
        d.mkdir(parents=True)
    dump = tmp_path / "dump.py"
    dump.write_text(DUMP)
    for name in HOSTILE.values():
        (root / "src").joinpath(os.fsdecode(name)).write_bytes(b"x")
    env = {
        "DUMP_OUT": str(out),
        "PYTHONCOERCECLOCALE": "0",
        "HOSTILE": ENV_HOSTILE,
        "PY": sys.executable,
        "DUMP": str(dump),
    }
    placeholders = [
        "{path}",
        "{src_path}",
        "{name}",
        "{dir}",
        "{root}",
        "{relpath}",
        "{mask}",
        "{rule}",
        "<{name}>{{lit}}",
    ]
    script = (
        'exec "$PY" "$DUMP" shell "$FSWATCHD_PATH" "$FSWATCHD_SRC_PATH" "$FSWATCHD_NAME" "$HOSTILE"'
    )
    rule = {
        "name": "hostile",
        "watch": str(root),
        "events": ["MOVED_TO"],
        "env": env,
        "actions": [{"run": [sys.executable, str(dump), "run", *placeholders]}, {"shell": script}],
    }
    daemon = start_daemon({"rules": [rule]})
    for name in HOSTILE.values():
        os.rename(
            os.path.join(os.fsencode(root), b"src", name),
            os.path.join(os.fsencode(root), b"dst", name),
        )
    # A dump is written as KEY.tmp and renamed to KEY; only the renamed ones are complete.
    wait_until(lambda: len(_finished_dumps(out)) == 2 * len(HOSTILE), "two dumps per name")
    broot = os.fsencode(root)
    for label, name in HOSTILE.items():
        path, src = broot + b"/dst/" + name, broot + b"/src/" + name
        values = [
            path,
            src,
            name,
            broot + b"/dst",
            broot,
            b"dst/" + name,
            b"MOVED_TO",
            b"hostile",
            b"<" + name + b">{lit}",
        ]
        event_env = {
            b"FSWATCHD_RULE": b"hostile",
            b"FSWATCHD_PATH": path,
            b"FSWATCHD_SRC_PATH": src,
            b"FSWATCHD_NAME": name,
            b"FSWATCHD_DIR": broot + b"/dst",
            b"FSWATCHD_ROOT": broot,
            b"FSWATCHD_RELPATH": b"dst/" + name,
            b"FSWATCHD_MASK": b"MOVED_TO",
            b"FSWATCHD_IS_DIR": b"0",
            b"FSWATCHD_SYNTHETIC": b"0",
            b"FSWATCHD_MERGED": b"1",
        }
        expected_env = {os.fsencode(k): os.fsencode(v) for k, v in env.items()}
        expected_env |= event_env | {b"PATH": CHILD_PATH}
        argv, run_env = _dump_of(out, b"run", path)
        assert argv == [b"run", *values], label
        assert run_env.pop(b"FSWATCHD_EVENT_ID")
        assert run_env == expected_env, label
        argv, sh_env = _dump_of(out, b"shell", path)
        assert argv == [b"shell", path, src, name, ENV_HOSTILE.encode()], label
        assert {k: sh_env.get(k) for k in expected_env} == expected_env, label
    places = [tmp_path, Path.cwd(), Path("/"), Path("/tmp"), Path(os.path.expanduser("~"))]
    assert not _pwned(places)
    assert (tmp_path / "canary").is_dir()
    assert daemon.stop() == 0
    assert not daemon.stray_lines()


# -- 7. config errors ---------------------------------------------------------------------

GOOD_ACTION = {"run": ["true"]}
#: id -> (rules, "KEY: REASON" regex, text found on the offending line)
BROKEN: dict[str, tuple[dict[str, object] | str, str, str]] = {
    "unknown-placeholder": (
        {"rules": [{"name": "r", "watch": "/tmp", "actions": [{"run": ["echo", "{pth}"]}]}]},
        r"rules\[0\]\.actions\[0\]\.run\[1\]: unknown placeholder \{pth\}",
        '"{pth}"',
    ),
    "unknown-key": (
        {"rules": [{"name": "r", "watch": "/tmp", "debounse": 1, "actions": [GOOD_ACTION]}]},
        r"rules\[0\]\.debounse: unknown key 'debounse'; valid keys here: name, watch",
        '"debounse"',
    ),
    "relative-watch": (
        {"rules": [{"name": "r", "watch": "in", "actions": [GOOD_ACTION]}]},
        r"rules\[0\]\.watch: 'in' is not an absolute path",
        '"watch": "in"',
    ),
    "placeholder-in-shell": (
        {"rules": [{"name": "r", "watch": "/tmp", "actions": [{"shell": "cat {path}"}]}]},
        r"rules\[0\]\.actions\[0\]\.shell: placeholders such as \{path\}",
        '"cat {path}"',
    ),
    "bad-event": (
        {
            "rules": [
                {"name": "r", "watch": "/tmp", "events": ["WRITTEN"], "actions": [GOOD_ACTION]}
            ]
        },
        r"rules\[0\]\.events(\[0\])?: unknown event 'WRITTEN'",
        '"events"',
    ),
    "duplicate-key": (
        "rules:\n  - name: r\n    watch: /tmp\n    actions: [{run: [true]}]\n    watch: /srv\n",
        r"rules\[0\]\.watch: duplicate key \(first written at line 3\)",
        "watch: /srv",
    ),
}


@pytest.mark.parametrize("rules,reason,needle", BROKEN.values(), ids=BROKEN.keys())
def test_invalid_rules_at_start_exit_3_with_file_line_key(
    start_daemon, tmp_path: Path, rules: dict[str, object] | str, reason: str, needle: str
) -> None:
    """1. `fswatchd run` with an invalid file exits 3 without READY=1.
    2. stderr says `FILE:LINE: KEY: REASON`, LINE being the offending line.
    3. `fswatchd check` exits 3 with the same line.
    """
    daemon: Daemon = start_daemon(rules, ready=False)
    assert daemon.wait() == 3
    config = tmp_path / "rules.yaml"
    line = 1 + next(i for i, t in enumerate(config.read_text().splitlines()) if needle in t)
    pattern = rf"^fswatchd: {re.escape(str(config))}:{line}: {reason}"
    assert re.search(pattern, daemon.log(), re.M), daemon.log()
    assert not [m for m in daemon.listener.messages if m.pid == daemon.pid]
    check = subprocess.run(
        [sys.executable, "-m", "fswatchd", "check", "-c", str(config)],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert check.returncode == 3
    assert re.search(pattern, check.stderr, re.M), check.stderr
