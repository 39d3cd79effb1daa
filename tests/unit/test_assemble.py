"""What the actions need from the system, checked once for `fswatchd check` and the daemon:
users and groups, secret files, CA bundles. Each refusal names the key at fault and its line.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
import trustme

from fswatchd.assemble import build_runtimes, check_actions
from fswatchd.errors import ConfigError
from fswatchd.rules import RuleSet, loads


def rules(tmp_path: Path, second_action: str, rule_keys: str = "") -> RuleSet:
    """Two rules; the second's second action is ``second_action`` (one YAML line)."""
    return loads(
        f"""\
rules:
  - name: a
    watch: {tmp_path}
    actions: [{{run: [/bin/true]}}]
  - name: b
    watch: {tmp_path}
{rule_keys}    actions:
      - run: [/bin/true]
      - {second_action}
""",
        "rules.yaml",
    )


def refusal(ruleset: RuleSet) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        check_actions(ruleset)
    return info.value


def test_a_missing_secret_file_is_refused_at_its_own_line(tmp_path: Path) -> None:
    hook = f"webhook:\n          url: http://127.0.0.1:9/\n          secret_file: {tmp_path}/no"
    err = refusal(rules(tmp_path, hook))
    assert (err.file, err.line, err.key) == (
        "rules.yaml",
        11,
        "rules[1].actions[1].webhook.secret_file",
    )
    assert err.reason == f"cannot read the secret {tmp_path}/no: No such file or directory"


def test_a_secret_file_that_is_a_directory(tmp_path: Path) -> None:
    err = refusal(rules(tmp_path, f"webhook: {{url: 'http://h/', secret_file: {tmp_path}}}"))
    assert (err.line, err.key) == (9, "rules[1].actions[1].webhook.secret_file")
    assert err.reason.endswith("Is a directory")


def test_a_ca_file_that_is_not_pem(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n")
    err = refusal(rules(tmp_path, f"webhook: {{url: 'https://h/', ca_file: {bad}}}"))
    assert (err.line, err.key) == (9, "rules[1].actions[1].webhook.ca_file")
    assert "cannot load CA certificates" in err.reason and "give a PEM bundle" in err.reason


def test_usable_secret_and_ca_pass(tmp_path: Path) -> None:
    secret, ca = tmp_path / "key", tmp_path / "ca.pem"
    secret.write_bytes(b"s3cret\n")
    trustme.CA().cert_pem.write_to_path(str(ca))
    hook = f"webhook: {{url: 'https://h/', secret_file: {secret}, ca_file: {ca}}}"
    check_actions(rules(tmp_path, hook))


@pytest.mark.parametrize(
    ("keys", "line", "key", "reason"),
    [
        ("    user: no-such-user-fswatchd\n", 7, "rules[1].user", "user 'no-such-user-fswatchd'"),
        ("    user: '٣'\n", 7, "rules[1].user", "user '٣' does not exist"),
        ("    user: '0'\n    group: no-such-group-fsw\n", 8, "rules[1].group", "group 'no-such"),
    ],
    ids=["unknown-user", "non-ascii-digit-is-a-name", "unknown-group"],
)
def test_users_and_groups_are_resolved(
    tmp_path: Path, keys: str, line: int, key: str, reason: str
) -> None:
    err = refusal(rules(tmp_path, "shell: 'true'", keys))
    assert (err.line, err.key) == (line, key), str(err)
    assert err.reason.startswith(reason)


def test_build_refuses_before_it_opens_a_session(tmp_path: Path) -> None:
    """The first rule's webhook would need the HTTP session; the second rule's secret is
    missing. The refusal comes before the session factory is ever called."""
    ruleset = loads(
        f"""\
rules:
  - {{name: a, watch: {tmp_path}, actions: [{{webhook: {{url: 'http://h/'}}}}]}}
  - {{name: b, watch: {tmp_path}, actions: [{{webhook: {{url: 'http://h/', secret_file: /no}}}}]}}
""",
        "rules.yaml",
    )
    calls: list[None] = []

    def session() -> aiohttp.ClientSession:
        calls.append(None)
        raise AssertionError("a session was asked for before the rules were checked")

    with pytest.raises(ConfigError, match="secret_file"):
        build_runtimes(ruleset, session)
    assert calls == []
