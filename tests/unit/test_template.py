"""argv placeholder templates: one element in, one element out, bytes kept exact."""

from __future__ import annotations

import pytest

from fswatchd.template import compile_template, has_placeholder

VALUES = {
    "path": b"/srv/in/a b;$(touch pwned)`x`\n\xff.csv",
    "dir": b"/srv/in",
    "name": b"a b;$(touch pwned)`x`\n\xff.csv",
    "rule": b"ingest",
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{path}", VALUES["path"]),
        ("--src={path}", b"--src=" + VALUES["path"]),
        ("{dir}/done", b"/srv/in/done"),
        ("{{path}}", b"{path}"),
        ("{{{rule}}}", b"{ingest}"),
        ("plain", b"plain"),
        ("{src_path}", b""),
        ("caf\u00e9-{rule}", "caf\u00e9-ingest".encode()),
    ],
    ids=["whole", "inside", "suffix", "escaped", "escaped-around", "literal", "absent", "utf8"],
)
def test_expand(text: str, expected: bytes) -> None:
    assert compile_template(text).expand(VALUES) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{pth}", "unknown placeholder {pth}"),
        ("{path:>9}", "no format spec"),
        ("{path!r}", "no format spec"),
        ("{", "literal braces"),
        ("}", "literal braces"),
        ("x{paths}", "whole argv element"),
        ("{0}", "unknown placeholder {0}"),
    ],
    ids=["unknown", "spec", "conversion", "open", "close", "paths-inside", "positional"],
)
def test_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("{", r"\{").replace("}", r"\}")):
        compile_template(text)


def test_paths_is_whole_element() -> None:
    assert compile_template("{paths}").is_paths
    assert not compile_template("{path}").is_paths
    assert compile_template("{dir}/{name}").fields == {"dir", "name"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [("$FSWATCHD_PATH", False), ("{path}", True), ("{{x}}", False), ("awk '{print $1}'", True)],
)
def test_has_placeholder(text: str, expected: bool) -> None:
    assert has_placeholder(text) is expected
