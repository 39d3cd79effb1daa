"""Hostile rules files: every problem must be a ConfigError (file, line, reason), never
another exception, and reading a file must stay bounded in time and memory.

A reload catches ConfigError only (docs/cli.md: "if anything fails, the old rules keep
running"), so any other exception out of the loader ends the daemon. The alias bomb and the
reload itself are tested against the real daemon in tests/process/test_adversarial_daemon.py.
"""

from __future__ import annotations

import dataclasses

import pytest
from dispatch_fakes import FakeAction, FakeClock, make, match, rule, running, until

from fswatchd.actions.base import Job
from fswatchd.actions.credentials import resolve_credentials
from fswatchd.assemble import dispatch_settings
from fswatchd.errors import ConfigError
from fswatchd.rules import loads
from fswatchd.rules.yamlpos import MAX_DEPTH, MAX_NODES, load_yaml

ACTION = "actions: [{run: [/bin/true]}]"
RULE = f"rules: [{{name: r, watch: /srv/in, {ACTION}}}]\n"

#: id -> a document the loader must refuse with a ConfigError.
REFUSED = {
    "alias-to-itself-in-a-list": "a: &a [*a]\n" + RULE,
    "alias-to-itself-in-a-mapping": "x: &a\n  y: *a\n" + RULE,
    "lists-nested-3000-deep": "rules: " + "[" * 3000 + "]" * 3000 + "\n",
    "mappings-nested-3000-deep": "x: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n" + RULE,
}


@pytest.mark.parametrize("text", REFUSED.values(), ids=REFUSED.keys())
def test_recursive_or_deep_documents_are_config_errors(text: str) -> None:
    with pytest.raises(ConfigError):
        loads(text, "rules.yaml")


def test_refusals_name_the_line_and_the_limit() -> None:
    """A self-reference names the alias's key; deep nesting names the documented limit."""
    with pytest.raises(ConfigError) as info:
        loads("x: &a\n  y: *a\n" + RULE, "rules.yaml")
    assert (info.value.line, info.value.key) == (2, "x.y")
    assert "alias refers to the anchor it is inside of" in info.value.reason
    with pytest.raises(ConfigError) as info:
        loads("rules:\n  - " + "[" * 3000 + "]" * 3000 + "\n", "rules.yaml")
    assert info.value.line == 2
    assert info.value.reason == f"nested deeper than {MAX_DEPTH} levels of lists and mappings"


def _bomb(levels: int, width: int = 9) -> str:
    lines = ["l0: &l0 [" + ",".join(["x"] * width) + "]"]
    lines += [f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * width) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n" + RULE


def test_alias_bomb_is_refused_at_the_anchor_that_passes_the_limit() -> None:
    """9 levels of 9 aliases (9**9 leaves, 300 bytes): refused at l5 (9**6 > 100,000)."""
    with pytest.raises(ConfigError) as info:
        loads(_bomb(9), "rules.yaml")
    assert (info.value.line, info.value.key) == (6, "l5")
    assert info.value.reason == (
        f"more than {MAX_NODES} values after alias expansion; aliases nest too deep"
    )


def test_merge_bomb_is_refused() -> None:
    """Merge keys expand like aliases: `<<: [*m, *m, ...]` nested is the same bomb."""
    lines = ["m0: &m0 {a: 1, b: 2}"]
    lines += [f"m{i}: &m{i} {{<<: [" + ",".join([f"*m{i - 1}"] * 9) + "]}" for i in range(1, 12)]
    with pytest.raises(ConfigError, match="after alias expansion"):
        loads("\n".join(lines) + "\n" + RULE, "rules.yaml")


def test_depth_counts_through_aliases() -> None:
    """Each anchor is shallow, but an alias of an alias nests past the limit."""
    text = "c0: &c0 " + "[" * 60 + "1" + "]" * 60 + "\nc1: " + "[" * 50 + "*c0" + "]" * 50
    with pytest.raises(ConfigError, match="counting through aliases") as info:
        loads(text + "\n" + RULE, "rules.yaml")
    assert info.value.line == 2


def test_many_aliases_under_the_limit_are_read() -> None:
    """Aliases are fine in themselves: 5 levels of 9 (59,049 leaves) are read."""
    data, _ = load_yaml(_bomb(5), "rules.yaml")
    assert len(data["l4"]) == 9 and data["l4"][8][8][8][8] == ["x"] * 9


def test_an_alias_of_a_mapping_that_overrides_a_merged_key() -> None:
    """A mapping that merges and overrides a key may itself be aliased (was refused as a
    duplicate key: the second visit saw the already merged node)."""
    text = """\
rules:
  - name: a
    watch: /x
    env: &env {<<: {A: "1", B: "1"}, B: "2"}
    actions: [{run: [t]}]
  - {name: b, watch: /y, env: *env, actions: [{run: [t]}]}
"""
    a, b = loads(text, "rules.yaml").rules
    assert a.env == b.env == {"A": "1", "B": "2"}


# -- values pydantic's lax mode would take, and ids the kernel cannot hold ------------------

RULE_AT = "rules:\n  - name: a\n    watch: /x\n"
RUN = "    actions: [{run: [t]}]\n"

#: id -> (rule lines after name and watch, line, key, reason)
BAD_VALUES = {
    "events-as-a-number": (
        "    events: 8\n" + RUN,
        4,
        "rules[0].events",
        "events must be an event name or a list of event names (got 8)",
    ),
    "concurrency-as-a-bool": (
        "    concurrency: true\n" + RUN,
        4,
        "rules[0].concurrency",
        "must be a number, not true",
    ),
    "debounce-as-a-bool": ("    debounce: false\n" + RUN, 4, "rules[0].debounce", "not false"),
    "empty-program": (
        "    actions:\n      - run:\n          - ''\n          - x\n",
        6,
        "rules[0].actions[0].run[0]",
        "the program (first element) is empty",
    ),
    "paths-as-the-program": (
        "    batch: {quiet: 1}\n    actions: [{run: ['{paths}', x]}]\n",
        5,
        "rules[0].actions[0].run[0]",
        "the program (first element) cannot be {paths}",
    ),
    "url-port-out-of-range": (
        "    actions: [{webhook: {url: 'http://h:99999/'}}]\n",
        4,
        "rules[0].actions[0].webhook.url",
        "the port must be a number from 1 to 65535",
    ),
    "url-with-crlf": (
        '    actions: [{webhook: {url: "http://h/x\\r\\nX-Evil: 1"}}]\n',
        4,
        "rules[0].actions[0].webhook.url",
        "a URL cannot contain a line break or another control character",
    ),
    "gid-past-32-bits": (
        "    group: 99999999999999999999\n" + RUN,
        4,
        "rules[0].group",
        "99999999999999999999 is not a valid id: ids run from 0 to 4294967294",
    ),
    "gid-minus-one": ("    group: '4294967295'\n" + RUN, 4, "rules[0].group", "not a valid id"),
    "uid-past-32-bits": ("    user: 4294967296\n" + RUN, 4, "rules[0].user", "not a valid id"),
}


@pytest.mark.parametrize(("lines", "line", "key", "reason"), BAD_VALUES.values(), ids=BAD_VALUES)
def test_values_refused_at_load(lines: str, line: int, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        loads(RULE_AT + lines, "rules.yaml")
    assert (info.value.line, info.value.key) == (line, key), str(info.value)
    assert reason in info.value.reason


def test_largest_ids_and_digit_names_load() -> None:
    """4294967294 is a valid id; '٣' is a (non-existent) name, not uid 3."""
    found = loads(RULE_AT + "    user: '٣'\n    group: 4294967294\n" + RUN).rules[0]
    assert (found.user, found.group) == ("٣", "4294967294")


def test_only_ascii_digits_are_ids() -> None:
    """resolve_credentials looks '٣' up as a name (str.isdigit and int() take it for 3)."""
    with pytest.raises(ValueError, match="user '٣' does not exist"):
        resolve_credentials("٣", None)
    with pytest.raises(ValueError, match="not a valid id"):
        resolve_credentials(None, "99999999999999999999")


async def test_max_chain_zero_turns_the_chain_limit_off() -> None:
    """settings.max_chain: 0 loads, and the dispatcher built from it acts on a chain of
    derived files deeper than the default 8 (a, a.out, ... 12 levels)."""
    settings = loads("settings: {max_chain: 0}\n" + RULE_AT + RUN).settings
    assert settings.max_chain == 0
    clock = FakeClock()
    d = make(clock, **dataclasses.asdict(dispatch_settings(settings)))
    action = FakeAction()
    r = rule(action)

    def derive(job: Job) -> None:
        path = job.event.path or b""
        if path.count(b".out") < 12:
            d.submit(r, match(path + b".out"))

    action.hook = derive
    async with running(d):
        d.submit(r, match(b"/w/a"))
        await until(lambda: len(action.calls) == 13 and d.stats.running == 0, "13 levels")
    assert d.stats.suppressed == 0
