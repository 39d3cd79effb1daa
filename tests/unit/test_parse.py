"""parse_events over fabricated ``struct inotify_event`` bytes (inotify(7))."""

from __future__ import annotations

import struct

import pytest

from fswatchd._inotify.flags import Mask
from fswatchd._inotify.parse import HEADER_SIZE, parse_events
from fswatchd.events import RawEvent


def record(wd: int, mask: int, cookie: int = 0, name: bytes = b"", pad: int | None = None) -> bytes:
    """One record as the kernel lays it out: header, name, NUL padding to 16 bytes.

    ``pad`` overrides the number of NULs after the name (the kernel always writes >= 1).
    """
    if name or pad:
        nuls = pad if pad is not None else 16 - len(name) % 16
        body = name + b"\0" * nuls
    else:
        body = b""
    return struct.pack("iIII", wd, mask, cookie, len(body)) + body


def test_header_size_matches_the_kernel_struct() -> None:
    assert HEADER_SIZE == 16


def test_empty_buffer_gives_no_events() -> None:
    assert parse_events(b"") == []


@pytest.mark.parametrize(
    ("name", "pad"),
    [
        (b"a", 15),
        (b"abcdefghijklmno", 1),  # 15 bytes + exactly one NUL
        (b"abcdefghijklmnop", 16),  # a name of exactly 16 bytes gets a whole block of NULs
        (b"x", 31),  # padding longer than one block
        (b"\xff\xfe not utf-8 \x80", 5),
        (b"new\nline $(touch PWNED) %e", 4),
    ],
    ids=["short", "one-nul", "aligned", "long-padding", "non-utf8", "hostile"],
)
def test_name_keeps_its_bytes_and_loses_all_padding(name: bytes, pad: int) -> None:
    (event,) = parse_events(record(3, Mask.CREATE, 0, name, pad))
    assert event == RawEvent(3, int(Mask.CREATE), 0, name)
    assert type(event.name) is bytes


def test_record_without_name() -> None:
    assert parse_events(record(1, Mask.DELETE_SELF)) == [RawEvent(1, int(Mask.DELETE_SELF), 0, b"")]


def test_overflow_record_has_wd_minus_one() -> None:
    (event,) = parse_events(record(-1, Mask.Q_OVERFLOW))
    assert event.wd == -1
    assert event.mask == Mask.Q_OVERFLOW
    assert event.name == b""


def test_high_mask_bits_and_cookie_are_unsigned() -> None:
    (event,) = parse_events(record(2, Mask.MOVED_FROM | Mask.ISDIR, 0xFFFFFFFF, b"d"))
    assert event.mask == 0x40000040
    assert event.cookie == 0xFFFFFFFF


def test_many_records_in_order() -> None:
    expected = [
        RawEvent(i % 7 + 1, int(Mask.MOVED_TO), i, b"f%d" % i if i % 3 else b"")
        for i in range(5000)
    ]
    buf = b"".join(record(*e) for e in expected)
    assert parse_events(buf) == expected


@pytest.mark.parametrize("kind", [bytearray, memoryview], ids=["bytearray", "memoryview"])
def test_accepts_bytearray_and_memoryview(kind: type[bytearray] | type[memoryview]) -> None:
    buf = record(1, Mask.CREATE, 0, b"a") + record(1, Mask.DELETE, 0, b"b")
    events = parse_events(kind(buf))
    assert [e.name for e in events] == [b"a", b"b"]
    assert all(type(e.name) is bytes for e in events)


def test_memoryview_slice_of_a_larger_buffer() -> None:
    buf = bytearray(record(1, Mask.CREATE, 0, b"a") + b"\xaa" * 64)
    assert parse_events(memoryview(buf)[:32]) == [RawEvent(1, int(Mask.CREATE), 0, b"a")]


@pytest.mark.parametrize(
    "cut",
    [1, HEADER_SIZE - 1, HEADER_SIZE, HEADER_SIZE + 5],
    ids=["in-header", "header-minus-1", "header-only", "in-name"],
)
def test_truncated_last_record_raises(cut: int) -> None:
    whole = record(1, Mask.CREATE, 0, b"a") + record(1, Mask.CREATE, 0, b"b")
    with pytest.raises(ValueError, match="truncated"):
        parse_events(whole[: 32 + cut])
