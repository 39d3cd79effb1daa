"""Warnings about valid rules, the mountinfo lookup, the watch estimate and ``fswatchd check``."""

from __future__ import annotations

import argparse
import io
import itertools
from pathlib import Path
from typing import Any

import pytest

from fswatchd import cli
from fswatchd.commands import check
from fswatchd.errors import ConfigError
from fswatchd.rules import Estimate, Rule, RuleSet, count_watches, load_ruleset, loads, warnings
from fswatchd.rules.mounts import is_remote, mount_of, parse_mountinfo

LOCAL = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"


def rule(watch: Any, **fields: Any) -> Rule:
    fields.setdefault("actions", [{"run": ["/bin/true"]}])
    return Rule.model_validate({"name": "r", "watch": watch, **fields})


def warn(
    watch: Any, mountinfo: str = LOCAL, file_roots: tuple[str, ...] = (), **fields: Any
) -> list[str]:
    ruleset = RuleSet.from_rules([rule(watch, **fields)], file_roots=file_roots)
    return warnings(ruleset, mountinfo=mountinfo)


CAT = {"run": ["/bin/cat", "{path}"]}

# (id, rule fields, a fragment of the one expected warning, or None for no warning)
WARNINGS = [
    ("clean", {}, None),
    ("read-events-loop", {"events": ["OPEN", "CLOSE_WRITE"], "actions": [CAT]}, "events OPEN fire"),
    ("access-with-shell", {"events": "ACCESS", "actions": [{"shell": "true"}]}, "ACCESS"),
    (
        "read-events-webhook-only",
        {"events": "CLOSE_NOWRITE", "actions": [{"webhook": {"url": "http://h/x"}}]},
        None,
    ),
    ("create-reads-half-file", {"events": "CREATE", "actions": [CAT]}, "use CLOSE_WRITE"),
    ("modify-shell", {"events": "MODIFY", "actions": [{"shell": "true"}]}, "MODIFY arrive"),
    ("create-no-path", {"events": "CREATE", "actions": [{"run": ["/bin/date"]}]}, None),
    ("pipe-in-argv", {"actions": [{"run": ["cat", "{path}", "|", "wc"]}]}, "run[2] is '|'"),
    ("semicolon", {"actions": [{"run": ["a", ";", "b"]}]}, "run[1] is ';'"),
    ("and-and", {"actions": [{"run": ["a", "&&", "b"]}]}, "use shell:"),
    ("redirect", {"actions": [{"run": ["a", ">", "/tmp/x"]}]}, "only a shell understands"),
    ("command-substitution", {"actions": [{"run": ["echo", "$(date)"]}]}, "'$(date)'"),
    ("backticks", {"actions": [{"run": ["echo", "`date`"]}]}, "'`date`'"),
    ("pipe-inside-argument", {"actions": [{"run": ["grep", "a|b"]}]}, None),
    ("flat-include-dir-part", {"recursive": False, "include": ["d/*.csv"]}, "can never match"),
    ("flat-include-globstar", {"recursive": False, "include": ["**/x.csv", "/y", "z/"]}, None),
    ("recursive-include-dir-part", {"include": ["d/*.csv"]}, None),
]


@pytest.mark.parametrize(
    ("fields", "fragment"), [w[1:] for w in WARNINGS], ids=[w[0] for w in WARNINGS]
)
def test_rule_warnings(tmp_path: Path, fields: dict[str, Any], fragment: str | None) -> None:
    found = warn(str(tmp_path), **fields)
    if fragment is None:
        assert found == []
    else:
        assert len(found) == 1, found
        assert found[0].startswith("<config>: ") and "(r): " in found[0]
        assert fragment in found[0]


def test_warning_names_file_line_and_rule(tmp_path: Path) -> None:
    text = f"rules:\n  - name: ingest\n    watch: {tmp_path}/absent\n    actions: [{{run: [a]}}]\n"
    (found,) = warnings(loads(text, "rules.yaml"), mountinfo=LOCAL)
    assert found.startswith("rules.yaml:2: rules[0] (ingest): watch ")
    assert "does not exist (yet)" in found


def test_symlink_root(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    (found,) = warn(str(tmp_path / "link"))
    assert "is a symbolic link" in found and str(tmp_path / "real") in found


def test_file_root_no_include_matches(tmp_path: Path) -> None:
    conf = tmp_path / "app.conf"
    conf.write_text("")
    assert warn(str(conf), file_roots=(str(conf),), include=["*.conf"]) == []
    (found,) = warn(str(conf), file_roots=(str(conf),), include=["*.csv"])
    assert "no include pattern matches" in found


def test_missing_named_files(tmp_path: Path) -> None:
    """A missing cwd is a warning; a missing secret_file is an error when the actions are
    built (fswatchd.assemble.check_actions), so it is not warned about as well."""
    hook = {"webhook": {"url": "https://h/x", "secret_file": str(tmp_path / "absent.key")}}
    found = warn(str(tmp_path), cwd=str(tmp_path / "nowhere"), actions=[hook])
    assert len(found) == 1 and "cwd" in found[0]


def mountinfo(point: Path, fstype: str) -> str:
    escaped = str(point).replace(" ", "\\040")
    return LOCAL + f"40 22 0:50 / {escaped} rw,relatime - {fstype} server:/export rw\n"


@pytest.mark.parametrize("fstype", ["nfs", "nfs4", "cifs", "smb3", "fuse.sshfs", "9p", "virtiofs"])
def test_remote_filesystem_root(tmp_path: Path, fstype: str) -> None:
    root = tmp_path / "mnt point"
    (root / "sub").mkdir(parents=True)
    (found,) = warn(str(root / "sub"), mountinfo=mountinfo(root, fstype))
    assert f"is on a {fstype} filesystem (mounted at {root})" in found
    assert "inotify sees only changes made on this host" in found


def test_local_filesystem_under_a_remote_one(tmp_path: Path) -> None:
    text = mountinfo(Path("/"), "nfs4") + mountinfo(tmp_path, "ext4")
    assert warn(str(tmp_path), mountinfo=text) == []


def test_mountinfo_parsing() -> None:
    text = (
        "36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 - ext3 /dev/root rw\n"
        "garbage line\n"
        "37 35 0:40 / /srv rw shared:2 shared:3 - nfs4 host:/x rw\n"
    )
    mounts = parse_mountinfo(text)
    assert mounts == [("/mnt/with space", "ext3"), ("/srv", "nfs4")]
    assert mount_of("/srv/in/x", mounts) == ("/srv", "nfs4")
    assert mount_of("/srvx", mounts) is None
    assert mount_of("/srv", mounts) == ("/srv", "nfs4")
    assert (is_remote("fuse.sshfs"), is_remote("fuseblk"), is_remote("ext4")) == (
        True,
        False,
        False,
    )


def make_tree(top: Path) -> None:
    for rel in ("a/b/c", "a/d", ".git/objects/00", ".git/refs", "e"):
        (top / rel).mkdir(parents=True)
    (top / "file").write_text("")
    (top / "link").symlink_to(top / "a")


def test_count_watches_follows_pruning(tmp_path: Path) -> None:
    make_tree(tmp_path)
    plain = RuleSet.from_rules([rule(str(tmp_path))])
    assert count_watches(plain) == Estimate(dirs=10, complete=True, unreadable=0)
    pruned = RuleSet.from_rules([rule(str(tmp_path), exclude=[".git/"])])
    assert count_watches(pruned) == Estimate(dirs=6, complete=True, unreadable=0)
    flat = RuleSet.from_rules([rule(str(tmp_path), recursive=False)])
    assert count_watches(flat) == Estimate(dirs=1, complete=True, unreadable=0)
    missing = RuleSet.from_rules([rule(str(tmp_path / "absent"))])
    assert count_watches(missing) == Estimate(dirs=0, complete=True, unreadable=0)


def test_count_watches_stops_at_its_budget(tmp_path: Path) -> None:
    make_tree(tmp_path)
    ticks = itertools.count()
    estimate = count_watches(
        RuleSet.from_rules([rule(str(tmp_path))]), budget=2, clock=lambda: float(next(ticks))
    )
    assert estimate.complete is False
    assert 1 <= estimate.dirs < 10


@pytest.mark.parametrize(
    ("dirs", "limit", "warned"),
    [(100, 8192, False), (7000, 8192, True), (50_000, 8192, True), (10, None, False)],
    ids=["small", "over-80-percent", "over-limit", "unknown-limit"],
)
def test_watch_budget(dirs: int, limit: int | None, warned: bool) -> None:
    text = check.watch_budget(Estimate(dirs, True, 0), limit)
    assert (text is not None) is warned
    if text is not None:
        assert "sysctl fs.inotify.max_user_watches=" in text


def run_check(config: Path) -> str:
    parser = argparse.ArgumentParser()
    check.add_arguments(parser)
    out = io.StringIO()
    assert check.main(parser.parse_args(["-c", str(config)]), out) == 0
    return out.getvalue()


def test_check_describes_the_rules(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    config = tmp_path / "rules.yaml"
    config.write_text(
        f"""\
settings: {{stop_timeout: 3, kill_grace: 2.5}}
rules:
  - name: ingest
    watch: {inbox}
    include: ["*.csv"]
    debounce: 0.5
    actions:
      - run: [/usr/bin/ingest, --src, "{{path}}"]
      - shell: 'printf "%s\\n" "$FSWATCHD_PATH"'
      - webhook: {{url: "https://hooks.example/x", timeout: 5}}
      - shell: "echo one\\necho two"
  - name: loop
    watch: {inbox}
    recursive: false
    events: [OPEN]
    actions: [{{run: [cat, "{{path}}"]}}]
"""
    )
    out = run_check(config)
    assert f"rule ingest  ({config}:3)" in out
    assert (  # every setting, those left at their defaults too
        "settings: state_dir /var/lib/fswatchd, max_actions 32, log_level info, "
        "stop_timeout 3, kill_grace 2.5, loop_window 1, loop_limit 3, max_chain 8\n"
    ) in out
    assert f"  watch    {inbox}  (recursive)" in out
    assert "  events   CLOSE_WRITE MOVED_TO" in out
    assert "  include  *.csv" in out
    assert "debounce 0.5 s, concurrency 4, on_busy queue" in out
    assert "  action 1 run    /usr/bin/ingest --src '{path}'  (timeout 60 s)" in out
    # The script as written (one shell word), not Python's repr with doubled backslashes;
    # repr only for one that holds a newline, to keep it on its line.
    assert """  action 2 shell  'printf "%s\\n" "$FSWATCHD_PATH"'  (timeout 60 s)""" in out
    assert "  action 3 webhook POST https://hooks.example/x  (timeout 5 s, 5 retries)" in out
    assert "  action 4 shell  'echo one\\necho two'  (timeout 60 s)" in out
    assert f"  watch    {inbox}  (direct children only)" in out
    assert "watches: 1 directory; fs.inotify.max_user_watches is " in out
    assert "warning: " in out and "events OPEN fire" in out
    assert out.endswith(f"{config}: valid, 2 rules, 1 warning\n")


def test_check_invalid_rules_raise_config_error(tmp_path: Path) -> None:
    config = tmp_path / "rules.yaml"
    config.write_text("rules:\n  - name: a\n    watch: rel\n    actions: [{run: [a]}]\n")
    with pytest.raises(ConfigError, match=r"rules\.yaml:3: rules\[0\]\.watch: "):
        run_check(config)


def test_check_through_the_cli_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "rules.yaml"
    config.write_text("rules: [\n")
    assert cli.main(["check", "-c", str(config)]) == cli.EXIT_CONFIG
    assert f"fswatchd: {config}:2: invalid YAML" in capsys.readouterr().err
    config.write_text(f"rules: [{{name: a, watch: {tmp_path}, actions: [{{run: [a]}}]}}]\n")
    assert cli.main(["check", "-c", str(config)]) == cli.EXIT_OK


def test_example_config_is_valid() -> None:
    example = Path(__file__).resolve().parents[2] / "config" / "rules.yaml"
    ruleset = load_ruleset(example, euid=1000)  # a checkout's owner is no concern here
    assert [r.name for r in ruleset.rules] == ["demo-copy", "demo-log"]
    assert ruleset.roots() == [(b"/tmp/fswatchd-demo/inbox", True)]
    assert "rule demo-copy" in "\n".join(check.describe(ruleset))
