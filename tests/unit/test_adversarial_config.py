"""Hostile rules files: every problem must be a ConfigError (file, line, reason), never
another exception, and reading a file must stay bounded in time and memory.

A reload catches ConfigError only (docs/cli.md: "if anything fails, the old rules keep
running"), so any other exception out of the loader ends the daemon. The alias bomb and the
reload itself are tested against the real daemon in tests/process/test_adversarial_daemon.py.
"""

from __future__ import annotations

import pytest

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
