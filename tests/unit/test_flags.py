"""Mask, InitFlag, mask_names and parse_mask against inotify(7) and <linux/inotify.h>."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from fswatchd._inotify.flags import InitFlag, Mask, mask_names, parse_mask

# Values copied from <linux/inotify.h> (Linux 6.x); a change in Mask must be deliberate.
HEADER_VALUES = {
    "ACCESS": 0x00000001,
    "MODIFY": 0x00000002,
    "ATTRIB": 0x00000004,
    "CLOSE_WRITE": 0x00000008,
    "CLOSE_NOWRITE": 0x00000010,
    "OPEN": 0x00000020,
    "MOVED_FROM": 0x00000040,
    "MOVED_TO": 0x00000080,
    "CREATE": 0x00000100,
    "DELETE": 0x00000200,
    "DELETE_SELF": 0x00000400,
    "MOVE_SELF": 0x00000800,
    "UNMOUNT": 0x00002000,
    "Q_OVERFLOW": 0x00004000,
    "IGNORED": 0x00008000,
    "ONLYDIR": 0x01000000,
    "DONT_FOLLOW": 0x02000000,
    "EXCL_UNLINK": 0x04000000,
    "MASK_CREATE": 0x10000000,
    "MASK_ADD": 0x20000000,
    "ISDIR": 0x40000000,
    "ONESHOT": 0x80000000,
    "CLOSE": 0x00000018,
    "MOVE": 0x000000C0,
    "ALL": 0x00000FFF,  # IN_ALL_EVENTS
}

HEADER = Path("/usr/include/linux/inotify.h")


@pytest.mark.parametrize(("name", "value"), sorted(HEADER_VALUES.items()))
def test_mask_values_are_the_kernel_values(name: str, value: int) -> None:
    assert Mask[name] == value


@pytest.mark.skipif(not HEADER.exists(), reason="kernel headers not installed")
def test_mask_agrees_with_installed_header() -> None:
    defined = dict(re.findall(r"#define\s+IN_(\w+)\s+(0x[0-9a-fA-F]+)", HEADER.read_text()))
    assert len(defined) >= 20
    for name, value in defined.items():
        assert Mask[name] == int(value, 16), name


def test_error_is_not_a_kernel_bit() -> None:
    kernel_bits = 0
    for value in HEADER_VALUES.values():
        kernel_bits |= value
    assert not Mask.ERROR & kernel_bits


def test_init_flags_are_the_open_flags() -> None:
    assert InitFlag.CLOEXEC == os.O_CLOEXEC
    assert InitFlag.NONBLOCK == os.O_NONBLOCK


def test_mask_names_in_table_order_with_isdir_last() -> None:
    mask = Mask.ISDIR | Mask.MOVED_TO | Mask.ACCESS
    assert mask_names(int(mask)) == ("ACCESS", "MOVED_TO", "ISDIR")


def test_mask_names_leaves_out_watch_only_bits() -> None:
    assert mask_names(int(Mask.CREATE | Mask.ONLYDIR | Mask.ONESHOT)) == ("CREATE",)
    assert mask_names(0) == ()


def test_mask_names_overflow_and_error() -> None:
    assert mask_names(int(Mask.Q_OVERFLOW)) == ("Q_OVERFLOW",)
    assert mask_names(int(Mask.ERROR | Mask.ISDIR)) == ("ERROR", "ISDIR")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("CREATE", Mask.CREATE),
        ("create", Mask.CREATE),
        ("IN_Close_Write", Mask.CLOSE_WRITE),
        ("in_moved_to, DELETE", Mask.MOVED_TO | Mask.DELETE),
        ("close,move", Mask.CLOSE | Mask.MOVE),
        ("ALL", Mask.ALL),
        ("CREATE,,", Mask.CREATE),
    ],
    ids=[
        "upper",
        "lower",
        "prefix-mixed-case",
        "list-with-spaces",
        "aliases",
        "all",
        "empty-items",
    ],
)
def test_parse_mask(text: str, expected: Mask) -> None:
    assert parse_mask(text) == expected


def test_parse_mask_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ValueError, match=r"unknown inotify event name 'CRAETE'.*CREATE"):
        parse_mask("MODIFY,CRAETE")


def test_parse_mask_roundtrips_mask_names() -> None:
    mask = Mask.CREATE | Mask.DELETE | Mask.MOVED_FROM | Mask.ISDIR
    assert parse_mask(",".join(mask_names(int(mask)))) == mask
