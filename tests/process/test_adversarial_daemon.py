"""Hostile inputs against the real daemon and CLI: rules files an operator (or whoever can
write them) might hand it, checked against what docs/cli.md and docs/config.md promise.
"""

from __future__ import annotations

import asyncio
import re
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from daemon_support import Daemon, start_daemon, wait_until, write_rules
from fixtures_http import Answer, HookServer

__all__ = ["start_daemon"]

FSWATCHD = (sys.executable, "-m", "fswatchd")


def _rules(root: Path, log: Path) -> dict[str, object]:
    argv = ["/bin/sh", "-c", 'printf "%s\\n" "$1" >> "$0"', str(log), "{relpath}"]
    return {"rules": [{"name": "r", "watch": str(root), "actions": [{"run": argv}]}]}


def _reload_outcome(daemon: Daemon) -> None:
    """Wait until the daemon logged the end of a reload, or died."""
    wait_until(
        lambda: (
            daemon.proc.poll() is not None or daemon.log_matches(r"reload (failed|ok)|reloaded")
        ),
        lambda: f"the end of the reload; log:\n{daemon.log()}",
    )


# -- a reload with a hostile rules file -----------------------------------------------------

#: id -> rules text that a reload must refuse while the old rules keep running.
RELOAD_REFUSED = {
    "alias-to-itself": "a: &a [*a]\nrules: []\n",
    "nested-3000-deep": "rules: " + "[" * 3000 + "]" * 3000 + "\n",
}


@pytest.mark.parametrize("text", RELOAD_REFUSED.values(), ids=RELOAD_REFUSED.keys())
def test_reload_with_a_recursive_rules_file_keeps_the_old_rules(
    start_daemon, tmp_path: Path, text: str
) -> None:
    """1. A daemon with one rule; the rules file is replaced by `text`; SIGHUP.
    2. The daemon is still running, logged "reload failed", and still acts on events.
    """
    root, log = tmp_path / "in", tmp_path / "log"
    root.mkdir()
    daemon = start_daemon(_rules(root, log))
    write_rules(tmp_path / "rules.yaml", text)
    daemon.signal(signal.SIGHUP)
    _reload_outcome(daemon)
    assert daemon.proc.poll() is None, daemon.log()
    assert daemon.log_matches("reload failed")
    (root / "after").write_bytes(b"x")
    wait_until(lambda: log.exists() and b"after\n" in log.read_bytes(), "the old rule's action")
    assert daemon.stop() == 0


# -- alias bomb -----------------------------------------------------------------------------


def _bomb(levels: int) -> str:
    """Billion laughs: each level is 9 aliases of the one before (9**levels leaves)."""
    lines = ['l0: &l0 ["x","x","x","x","x","x","x","x","x"]']
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]")
    lines.append("rules: [{name: r, watch: /srv/in, actions: [{run: [/bin/true]}]}]")
    return "\n".join(lines) + "\n"


def _limit_memory() -> None:  # runs in the child between fork and exec
    limit = 1 << 30  # 1 GiB of address space: far above what a rules file may cost
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def test_alias_bomb_is_refused_quickly_in_bounded_memory(tmp_path: Path) -> None:
    """1. A 9-level billion-laughs document (9**9 leaves, < 1 KB of text).
    2. `fswatchd check` under a 1 GiB address-space limit exits 3 (invalid rules) within
       30 s: never a MemoryError or a hang.
    """
    rules = tmp_path / "bomb.yaml"
    rules.write_text(_bomb(9))
    done = subprocess.run(
        [*FSWATCHD, "check", "-c", str(rules)],
        capture_output=True,
        timeout=30,
        preexec_fn=_limit_memory,
        check=False,
    )
    assert done.returncode == 3, done.stderr.decode(errors="replace")[-2000:]


# -- check and run must agree ---------------------------------------------------------------


def _check(rules: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*FSWATCHD, "check", "-c", str(rules)], capture_output=True, timeout=60, check=False
    )


#: id -> (rule keys, webhook keys, key at fault, reason): rules `fswatchd run` refuses for
#: what an action needs from the system, which `check` once called valid.
DISAGREE = {
    "unknown-user": (
        {"user": "no-such-user-fswatchd"},
        None,
        "rules[0].user",
        "user 'no-such-user-fswatchd' does not exist",
    ),
    "missing-secret-file": (
        {},
        {"secret_file": "{tmp}/no-such-secret"},
        "rules[0].actions[0].webhook.secret_file",
        "cannot read the secret .*: No such file or directory",
    ),
    "secret-file-is-a-directory": (
        {},
        {"secret_file": "{tmp}"},
        "rules[0].actions[0].webhook.secret_file",
        "cannot read the secret .*: Is a directory",
    ),
    "ca-file-not-pem": (
        {},
        {"ca_file": "{tmp}/rules.yaml"},
        "rules[0].actions[0].webhook.ca_file",
        "cannot load CA certificates from .*rules.yaml",
    ),
}


@pytest.mark.parametrize("rule_keys,hook_keys,key,reason", DISAGREE.values(), ids=DISAGREE.keys())
def test_check_and_run_agree_on_validity(
    start_daemon,
    tmp_path: Path,
    rule_keys: dict[str, str],
    hook_keys: dict[str, str] | None,
    key: str,
    reason: str,
) -> None:
    """1. Rules whose action cannot get what it needs (a user, a secret, a CA bundle).
    2. `fswatchd check` exits 3 with FILE:LINE: KEY: REASON, LINE that of the key.
    3. `fswatchd run` on the same file exits 3 with the same message, without READY=1.
    """
    root = tmp_path / "in"
    root.mkdir()
    action: dict[str, object] = {"run": ["/bin/true"]}
    if hook_keys is not None:
        hook = {"url": "http://127.0.0.1:9/"}
        hook |= {k: v.format(tmp=tmp_path) for k, v in hook_keys.items()}
        action = {"webhook": hook}
    rule = {"name": "r", "watch": str(root), "actions": [action], **rule_keys}
    rules = write_rules(tmp_path / "rules.yaml", {"rules": [rule]})
    name = key.rpartition(".")[2]
    line = 1 + next(i for i, t in enumerate(rules.read_text().splitlines()) if f'"{name}"' in t)
    message = rf"^fswatchd: {re.escape(str(rules))}:{line}: {re.escape(key)}: {reason}"
    checked = _check(rules)
    assert checked.returncode == 3, checked.stdout
    assert re.search(message, checked.stderr.decode(), re.M), checked.stderr
    daemon = start_daemon(rules, ready=False)
    assert daemon.wait() == 3
    assert re.search(message, daemon.log(), re.M), daemon.log()
    assert not [m for m in daemon.listener.messages if m.pid == daemon.pid]


# -- what a webhook receiver sends back ------------------------------------------------------


async def test_webhook_response_body_cannot_forge_log_lines(start_daemon, tmp_path: Path) -> None:
    """1. A webhook rule; the receiver answers 404 with a body holding CR LF, a line that
       looks like a record, and terminal escape sequences.
    2. The failure is logged as one record: no stray line, no raw ESC or CR in the log.
    """
    root = tmp_path / "in"
    root.mkdir()
    body = b"\x1b]0;owned\x07\x1b[2Jnot found\r\n2026-01-01 00:00:00,000 ERROR fswatchd: forged"
    server = HookServer()
    url = await server.start()
    try:
        server.script(Answer(404, body=body))
        hook = {"url": url, "timeout": 5, "retries": 0}
        rule = {"name": "hook", "watch": str(root), "actions": [{"webhook": hook}]}
        daemon = await asyncio.to_thread(start_daemon, {"rules": [rule]})
        (root / "a").write_bytes(b"x")
        await asyncio.to_thread(daemon.wait_log, r"WARNING fswatchd\[hook\]: webhook .*HTTP 404")
        assert await asyncio.to_thread(daemon.stop) == 0
        assert not daemon.stray_lines()
        assert not daemon.log_matches(r"^2026-01-01 .*forged"), "a forged record"
        assert "\x1b" not in daemon.log() and "\r" not in daemon.log()
    finally:
        await server.close()
