"""Loading rules files: every error names file, line and key; directories; ownership."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from fswatchd.errors import ConfigError
from fswatchd.events import Mask
from fswatchd.rules import RunAction, ShellAction, WebhookAction, config_path, load_ruleset, loads
from fswatchd.rules.model import Rule

RULE = """\
rules:
  - name: a
    watch: /srv/in
    actions:
      - run: [/bin/true]
"""


def load_error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        loads(textwrap.dedent(text), "rules.yaml")
    return info.value


# (id, document, line, key, a fragment of the reason)
ERRORS = [
    ("yaml-syntax", "rules: [\n", 2, "", "invalid YAML"),
    ("two-documents", "rules: []\n---\nrules: []\n", 2, "", "invalid YAML"),
    ("top-level-list", "- a\n", 1, "", "must be a mapping with rules:"),
    ("no-rules", "settings: {log_level: info}\n", None, "rules", "no rules"),
    (
        "unsupported-tag",
        "rules: !!python/object:os.system {}\n",
        1,
        "rules",
        "unsupported YAML tag",
    ),
    (
        "duplicate-top-key",
        RULE + "rules: []\n",
        6,
        "rules",
        "duplicate key (first written at line 1)",
    ),
    (
        "duplicate-rule-key",
        """\
        rules:
          - name: a
            watch: /srv/in
            watch: /srv/out
            actions: [{run: [t]}]
        """,
        4,
        "rules[0].watch",
        "duplicate key (first written at line 3)",
    ),
    (
        "unknown-placeholder",
        """\
        rules:
          - name: a
            watch: /srv/in
            actions:
              - run:
                  - /bin/cp
                  - "{pth}"
        """,
        7,
        "rules[0].actions[0].run[1]",
        "unknown placeholder {pth}",
    ),
    (
        "placeholder-spec",
        "rules: [{name: a, watch: /x, actions: [{run: ['{path!r}']}]}]\n",
        1,
        "rules[0].actions[0].run[0]",
        "no format spec",
    ),
    (
        "placeholder-in-shell",
        """\
        rules:
          - name: a
            watch: /srv/in
            actions:
              - shell: 'cat {path} | wc -l'
        """,
        5,
        "rules[0].actions[0].shell",
        '"$FSWATCHD_PATH"',
    ),
    (
        "relative-watch",
        "rules:\n  - name: a\n    watch: srv/in\n    actions: [{run: [t]}]\n",
        3,
        "rules[0].watch",
        "'srv/in' is not an absolute path",
    ),
    (
        "relative-watch-in-list",
        """\
        rules:
          - name: a
            watch:
              - /srv/in
              - ./out
            actions: [{run: [t]}]
        """,
        5,
        "rules[0].watch[1]",
        "not an absolute path",
    ),
    (
        "bad-event",
        "rules:\n  - name: a\n    watch: /x\n    events: [close_write, CLOSE_WRIT]\n"
        "    actions: [{run: [t]}]\n",
        4,
        "rules[0].events",
        "unknown event 'CLOSE_WRIT'; valid: ACCESS",
    ),
    (
        "not-subscribable-event",
        "rules:\n  - name: a\n    watch: /x\n    events: Q_OVERFLOW\n    actions: [{run: [t]}]\n",
        4,
        "rules[0].events",
        "Q_OVERFLOW is not an event a watch can subscribe to",
    ),
    (
        "unknown-rule-key",
        "rules:\n  - name: a\n    watch: /x\n    evnts: [CREATE]\n    actions: [{run: [t]}]\n",
        4,
        "rules[0].evnts",
        "unknown key 'evnts'; valid keys here: name, watch, recursive, events",
    ),
    (
        "unknown-settings-key",
        "settings:\n  state: /x\n" + RULE,
        2,
        "settings.state",
        "valid keys here: state_dir, max_actions, log_level",
    ),
    (
        "unknown-top-key",
        RULE + "rule: []\n",
        6,
        "rule",
        "valid keys here: settings, rules",
    ),
    (
        "missing-name",
        "rules:\n  - watch: /x\n    actions: [{run: [t]}]\n",
        2,
        "rules[0].name",
        "required key is missing",
    ),
    (
        "missing-actions",
        "rules:\n  - name: a\n    watch: /x\n",
        2,
        "rules[0].actions",
        "required key is missing",
    ),
    (
        "empty-actions",
        "rules:\n  - name: a\n    watch: /x\n    actions: []\n",
        4,
        "rules[0].actions",
        "at least 1 item",
    ),
    (
        "bad-rule-name",
        "rules:\n  - name: 'a b'\n    watch: /x\n    actions: [{run: [t]}]\n",
        2,
        "rules[0].name",
        "is not a rule name: use 1 to 128 letters, digits and _ . @ : -",
    ),
    (
        "action-two-kinds",
        "rules:\n  - name: a\n    watch: /x\n    actions:\n      - {run: [t], shell: 'true'}\n",
        5,
        "rules[0].actions[0]",
        "exactly one of run:, shell:, webhook:",
    ),
    (
        "action-no-kind",
        "rules:\n  - name: a\n    watch: /x\n    actions:\n      - {timeout: 5}\n",
        5,
        "rules[0].actions[0]",
        "exactly one of run:, shell:, webhook:",
    ),
    (
        "empty-argv",
        "rules:\n  - name: a\n    watch: /x\n    actions:\n      - run: []\n",
        5,
        "rules[0].actions[0].run",
        "at least 1 item",
    ),
    (
        "nul-in-argv",
        'rules:\n  - name: a\n    watch: /x\n    actions:\n      - run: ["a\\0b"]\n',
        5,
        "rules[0].actions[0].run[0]",
        "NUL",
    ),
    (
        "action-unknown-key",
        "rules:\n  - name: a\n    watch: /x\n    actions:\n      - run: [/bin/true]\n"
        "        retries: 3\n",
        6,
        "rules[0].actions[0].retries",
        "unknown key 'retries'; valid keys here: run, timeout",
    ),
    (
        "zero-timeout",
        "rules:\n  - name: a\n    watch: /x\n    actions:\n      - run: [/bin/true]\n"
        "        timeout: 0\n",
        6,
        "rules[0].actions[0].timeout",
        "greater than 0 (got 0)",
    ),
    (
        "webhook-bad-url",
        """\
        rules:
          - name: a
            watch: /x
            actions:
              - webhook:
                  url: ftp://example.org/x
        """,
        6,
        "rules[0].actions[0].webhook.url",
        "not an http:// or https:// URL",
    ),
    (
        "webhook-unknown-key",
        """\
        rules:
          - name: a
            watch: /x
            actions:
              - webhook:
                  url: https://example.org/x
                  secret: abc
        """,
        7,
        "rules[0].actions[0].webhook.secret",
        "valid keys here: url, secret_file, headers, timeout, ca_file, retries",
    ),
    (
        "webhook-timeout-outside",
        """\
        rules:
          - name: a
            watch: /x
            actions:
              - webhook: {url: "https://example.org/x"}
                timeout: 3
        """,
        6,
        "rules[0].actions[0].timeout",
        "unknown key 'timeout'; valid keys here: webhook",
    ),
    (
        "webhook-header-newline",
        """\
        rules:
          - name: a
            watch: /x
            actions:
              - webhook:
                  url: https://example.org/x
                  headers: {X-A: "a\\r\\nb"}
        """,
        7,
        "rules[0].actions[0].webhook.headers.X-A",
        "line break",
    ),
    (
        "paths-without-batch",
        "rules:\n  - name: a\n    watch: /x\n    actions:\n      - run: [/bin/ls, '{paths}']\n",
        5,
        "rules[0].actions[0].run[1]",
        "{paths} needs a rule with batch:",
    ),
    (
        "paths-inside-element",
        "rules:\n  - name: a\n    watch: /x\n    actions:\n      - run: [/bin/ls, '-{paths}']\n",
        5,
        "rules[0].actions[0].run[1]",
        "{paths} must be a whole argv element",
    ),
    (
        "batch-and-debounce",
        """\
        rules:
          - name: a
            watch: /x
            debounce: 1
            batch: {quiet: 2}
            actions: [{run: [/bin/ls, '{paths}']}]
        """,
        4,
        "rules[0].debounce",
        "debounce and batch: exclude each other",
    ),
    (
        "batch-with-path",
        """\
        rules:
          - name: a
            watch: /x
            batch: {quiet: 2}
            actions:
              - run: [/bin/ls, '{path}']
        """,
        6,
        "rules[0].actions[0].run[1]",
        "{path}: a batch: rule runs once for many paths",
    ),
    (
        "batch-max-wait",
        """\
        rules:
          - name: a
            watch: /x
            batch:
              quiet: 5
              max_wait: 1
            actions: [{run: [/bin/ls, '{paths}']}]
        """,
        6,
        "rules[0].batch.max_wait",
        "must be at least quiet",
    ),
    (
        "bad-on-busy",
        "rules:\n  - name: a\n    watch: /x\n    on_busy: drop\n    actions: [{run: [t]}]\n",
        4,
        "rules[0].on_busy",
        "'queue' or 'coalesce' (got 'drop')",
    ),
    (
        "negative-debounce",
        "rules:\n  - name: a\n    watch: /x\n    debounce: -1\n    actions: [{run: [t]}]\n",
        4,
        "rules[0].debounce",
        "greater than or equal to 0",
    ),
    (
        "reserved-env",
        "rules:\n  - name: a\n    watch: /x\n    env: {FSWATCHD_PATH: x}\n"
        "    actions: [{run: [t]}]\n",
        4,
        "rules[0].env.FSWATCHD_PATH",
        "reserved for event data",
    ),
    (
        "relative-cwd",
        "rules:\n  - name: a\n    watch: /x\n    cwd: tmp\n    actions: [{run: [t]}]\n",
        4,
        "rules[0].cwd",
        "not an absolute path",
    ),
    (
        "comment-pattern",
        "rules:\n  - name: a\n    watch: /x\n    include: ['#x#']\n    actions: [{run: [t]}]\n",
        4,
        "rules[0].include[0]",
        "is a comment in gitignore syntax",
    ),
    (
        "duplicate-rule-name",
        RULE + "  - name: a\n    watch: /y\n    actions: [{run: [t]}]\n",
        6,
        "rules[1].name",
        "duplicate rule name 'a' (also rules[0])",
    ),
    (
        "bad-log-level",
        "settings: {log_level: loud}\n" + RULE,
        1,
        "settings.log_level",
        "'debug', 'info', 'warning' or 'error' (got 'loud')",
    ),
    (
        "counts-more-problems",
        "rules:\n  - name: a\n    watch: x\n    recursive: maybe\n    actions: [{run: [t]}]\n",
        3,
        "rules[0].watch",
        "not an absolute path (it must start with /) (and 1 more problem in this file)",
    ),
]


@pytest.mark.parametrize(
    ("text", "line", "key", "reason"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS]
)
def test_config_errors_name_file_line_and_key(
    text: str, line: int | None, key: str, reason: str
) -> None:
    err = load_error(text)
    assert (err.file, err.line, err.key) == ("rules.yaml", line, key), str(err)
    assert reason in err.reason
    where = f"rules.yaml:{line}" if line else "rules.yaml"
    assert str(err) == (f"{where}: {key}: {err.reason}" if key else f"{where}: {err.reason}")


def test_message_reads_file_line_key_reason() -> None:
    err = load_error(
        "rules:\n  - name: a\n    watch: /x\n    actions:\n      - run: [/bin/cp, '{pth}']\n"
    )
    assert str(err).startswith(
        "rules.yaml:5: rules[0].actions[0].run[1]: unknown placeholder {pth}"
    )


def test_defaults() -> None:
    rule = loads(RULE).rules[0]
    assert rule.watch == ("/srv/in",)
    assert rule.recursive is True
    assert rule.events == Mask.CLOSE_WRITE | Mask.MOVED_TO
    assert (rule.include, rule.exclude, rule.default_excludes) == ((), (), True)
    assert (rule.debounce, rule.batch, rule.concurrency) == (0.0, None, 4)
    assert (rule.on_busy, rule.queue_limit, rule.stop_on_failure) == ("queue", 1000, True)
    assert (rule.env, rule.cwd, rule.user, rule.group) == ({}, None, None, None)
    action = rule.actions[0]
    assert isinstance(action, RunAction) and action.timeout == 60.0


def test_every_action_kind_and_its_defaults() -> None:
    rule = loads(
        """\
rules:
  - name: a
    watch: /x
    actions:
      - run: [sleep, 5, "{path}"]
      - shell: 'wc -l "$FSWATCHD_PATH" | awk "{print \\$1}"; echo ${HOME}'
      - webhook: {url: "https://example.org/hook", headers: {X-Token: abc}}
"""
    ).rules[0]
    run, shell, hook = rule.actions
    assert isinstance(run, RunAction) and run.run == ("sleep", "5", "{path}")
    assert [t.fields for t in run.templates] == [frozenset(), frozenset(), {"path"}]
    assert isinstance(shell, ShellAction) and shell.timeout == 60.0
    assert isinstance(hook, WebhookAction)
    assert (hook.webhook.timeout, hook.webhook.retries) == (10.0, 5)
    assert hook.webhook.headers == {"X-Token": "abc"}


@pytest.mark.parametrize(
    ("events", "mask"),
    [
        ("close_write", Mask.CLOSE_WRITE),
        ("[Create, in_delete]", Mask.CREATE | Mask.DELETE),
        ("'CLOSE_WRITE,MOVED_TO'", Mask.CLOSE_WRITE | Mask.MOVED_TO),
        ("[CLOSE, MOVE]", Mask.CLOSE | Mask.MOVE),
        ("ALL", Mask.ALL),
    ],
    ids=["lower", "list-mixed-case-prefix", "comma-string", "close-move", "all"],
)
def test_event_names(events: str, mask: Mask) -> None:
    text = (
        f"rules:\n  - name: a\n    watch: /x\n    events: {events}\n    actions: [{{run: [a]}}]\n"
    )
    assert loads(text).rules[0].events == mask


def test_watch_paths_are_normalised_and_deduplicated() -> None:
    text = "rules:\n  - {name: a, watch: [/srv//in/, /srv/in, /srv/./out], actions: [{run: [a]}]}\n"
    assert loads(text).rules[0].watch == ("/srv/in", "/srv/out")


def test_anchors_and_merge_keys() -> None:
    text = """\
rules:
  - &base
    name: a
    watch: /x
    actions: [{run: [t]}]
  - <<: *base
    name: b
    watch: /y
"""
    first, second = loads(text).rules
    assert (first.name, first.watch, second.name, second.watch) == ("a", ("/x",), "b", ("/y",))


def test_rules_are_frozen_and_hashable() -> None:
    rule = loads(RULE).rules[0]
    with pytest.raises(ValueError, match="frozen"):
        rule.name = "b"  # type: ignore[misc]
    assert {rule: 1}[Rule.model_validate(rule.model_dump())] == 1


def test_file_root_is_followed_by_name(tmp_path: Path) -> None:
    conf = tmp_path / "app.conf"
    conf.write_text("x")
    text = f"rules:\n  - {{name: a, watch: [{conf}, {tmp_path}], actions: [{{run: [a]}}]}}\n"
    entry = loads(text).entries[0]
    file_root, dir_root = entry.roots
    assert (file_root.path, file_root.recursive, file_root.name) == (
        os.fsencode(tmp_path),
        False,
        b"app.conf",
    )
    assert file_root.file_path == os.fsencode(conf)
    assert (dir_root.path, dir_root.recursive, dir_root.name) == (os.fsencode(tmp_path), True, None)


def write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.write_text(textwrap.dedent(text))
    path.chmod(mode)
    return path


def rule_doc(name: str) -> str:
    return f"rules:\n  - name: {name}\n    watch: /x\n    actions: [{{run: [/bin/true]}}]\n"


def test_directory_reads_yaml_files_in_name_order(tmp_path: Path) -> None:
    write(tmp_path / "b.yaml", rule_doc("b"))
    write(tmp_path / "10-a.yaml", rule_doc("ten") + rule_doc("x")[len("rules:\n") :])
    write(tmp_path / "a.yaml", "settings: {max_actions: 3}\n" + rule_doc("a"))
    write(tmp_path / "c.yml", rule_doc("not-yaml-suffix"))
    write(tmp_path / ".#d.yaml", rule_doc("editor-lock"))
    (tmp_path / "dir.yaml").mkdir()
    ruleset = load_ruleset(tmp_path, euid=os.geteuid() or 1000)
    assert [r.name for r in ruleset.rules] == ["ten", "x", "a", "b"]
    assert ruleset.settings.max_actions == 3
    assert ruleset.sources == tuple(str(tmp_path / n) for n in ("10-a.yaml", "a.yaml", "b.yaml"))
    assert [e.file for e in ruleset.entries] == [
        str(tmp_path / n) for n in ("10-a.yaml", "10-a.yaml", "a.yaml", "b.yaml")
    ]


def test_directory_duplicate_rule_names_both_files(tmp_path: Path) -> None:
    first = write(tmp_path / "a.yaml", rule_doc("same"))
    second = write(tmp_path / "b.yaml", rule_doc("other") + rule_doc("same")[len("rules:\n") :])
    with pytest.raises(ConfigError) as info:
        load_ruleset(tmp_path, euid=1000)
    err = info.value
    assert (err.file, err.line, err.key) == (str(second), 5, "rules[1].name")
    assert f"duplicate rule name 'same' (also in {first}:2)" in err.reason


def test_directory_settings_in_two_files(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", "settings: {}\n" + rule_doc("a"))
    second = write(tmp_path / "b.yaml", "settings: {}\n" + rule_doc("b"))
    with pytest.raises(ConfigError, match="already given in") as info:
        load_ruleset(tmp_path, euid=1000)
    assert (info.value.file, info.value.line, info.value.key) == (str(second), 1, "settings")


def test_directory_without_yaml_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no \*\.yaml rules files"):
        load_ruleset(tmp_path, euid=1000)


def test_directory_error_names_the_file(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", rule_doc("a"))
    bad = write(
        tmp_path / "b.yaml", "rules:\n  - name: b\n    watch: rel\n    actions: [{run: [a]}]\n"
    )
    with pytest.raises(ConfigError) as info:
        load_ruleset(tmp_path, euid=1000)
    assert (info.value.file, info.value.line, info.value.key) == (str(bad), 3, "rules[0].watch")


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="No such file"):
        load_ruleset(tmp_path / "absent.yaml", euid=1000)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"rules: []\n# caf\xe9\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_ruleset(latin, euid=1000)


def owned_by_someone_else(path: Path) -> None:
    """Make ``path`` belong to a uid other than root (as root: chown; else it already is)."""
    if os.geteuid() == 0:
        os.chown(path, 65534, -1)


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        (0o664, "writable by group or others (mode 0664)"),
        (0o646, "writable by group or others (mode 0646)"),
    ],
    ids=["group-writable", "world-writable"],
)
def test_root_refuses_files_others_can_write(tmp_path: Path, mode: int, reason: str) -> None:
    path = write(tmp_path / "rules.yaml", RULE, mode)
    with pytest.raises(ConfigError) as info:
        load_ruleset(path, euid=0)
    assert info.value.file == str(path)
    assert reason in info.value.reason and "chmod go-w" in info.value.reason


def test_root_refuses_files_owned_by_another_user(tmp_path: Path) -> None:
    path = write(tmp_path / "rules.yaml", RULE)
    owned_by_someone_else(path)
    with pytest.raises(ConfigError, match=r"owned by uid \d+, not root") as info:
        load_ruleset(path, euid=0)
    assert info.value.file == str(path)


def test_root_refuses_writable_directory_and_files_in_it(tmp_path: Path) -> None:
    rules_d = tmp_path / "rules.d"
    rules_d.mkdir(mode=0o755)
    inner = write(rules_d / "a.yaml", RULE, 0o664)
    rules_d.chmod(0o775)
    with pytest.raises(ConfigError, match="mode 0775") as info:
        load_ruleset(rules_d, euid=0)
    assert info.value.file == str(rules_d)
    rules_d.chmod(0o755)
    with pytest.raises(ConfigError, match="mode 0664") as info:
        load_ruleset(rules_d, euid=0)
    assert info.value.file == str(inner)


def test_non_root_does_not_check_ownership(tmp_path: Path) -> None:
    path = write(tmp_path / "rules.yaml", RULE, 0o666)
    assert load_ruleset(path, euid=1000).rules[0].name == "a"


@pytest.mark.parametrize(
    ("given", "environ", "expected"),
    [
        ("/a.yaml", {"FSWATCHD_CONFIG": "/b.yaml"}, "/a.yaml"),
        (None, {"FSWATCHD_CONFIG": "/b.yaml"}, "/b.yaml"),
        (None, {"FSWATCHD_CONFIG": ""}, "/etc/fswatchd/rules.yaml"),
        (None, {}, "/etc/fswatchd/rules.yaml"),
    ],
    ids=["flag-wins", "environment", "empty-environment", "default"],
)
def test_config_path(given: str | None, environ: dict[str, str], expected: str) -> None:
    assert config_path(given, environ) == expected
