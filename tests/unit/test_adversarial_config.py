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

ACTION = "actions: [{run: [/bin/true]}]"
RULE = f"rules: [{{name: r, watch: /srv/in, {ACTION}}}]\n"

#: id -> a document the loader must refuse with a ConfigError.
REFUSED = {
    "alias-to-itself-in-a-list": "a: &a [*a]\n" + RULE,
    "alias-to-itself-in-a-mapping": "x: &a\n  y: *a\n" + RULE,
    "lists-nested-3000-deep": "rules: " + "[" * 3000 + "]" * 3000 + "\n",
    "mappings-nested-3000-deep": "x: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n" + RULE,
}


@pytest.mark.xfail(
    strict=True,
    reason="a self-referencing alias (yamlpos._build follows it forever) or a deeply nested "
    "document (PyYAML's recursive composer) raises RecursionError, not ConfigError: a "
    "SIGHUP with such a file kills the daemon",
)
@pytest.mark.parametrize("text", REFUSED.values(), ids=REFUSED.keys())
def test_recursive_or_deep_documents_are_config_errors(text: str) -> None:
    with pytest.raises(ConfigError):
        loads(text, "rules.yaml")
