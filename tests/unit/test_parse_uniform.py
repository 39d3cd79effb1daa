"""parse_events' two paths: records of one size (split in C) and any records (one by one).

Most reads hold records of one size (short names all pad to 16 bytes); parse_events then
splits them with struct.iter_unpack. These tests pin that both paths give the same
records for any buffer, that the uniform path is taken only when every record really has
the first one's size, and that a truncated buffer is refused whichever path sees it.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fswatchd._inotify.flags import Mask
from fswatchd._inotify.parse import _parse_records, _uniform_size, parse_events
from fswatchd.events import RawEvent

CREATE = int(Mask.CREATE)


def record(wd: int, mask: int, cookie: int, name: bytes, size: int) -> bytes:
    """One record whose name field is ``size`` bytes (name, then NULs; 0 = no name)."""
    assert size == 0 or len(name) < size
    return struct.pack("iIII", wd, mask, cookie, size) + name.ljust(size, b"\0")


def padded(name: bytes) -> int:
    """The kernel's name field size for ``name``: NUL-terminated, rounded up to 16."""
    return 0 if not name else (len(name) // 16 + 1) * 16


# Names as the kernel can report them: any bytes but NUL and "/", 0-255 bytes long.
names = st.binary(max_size=255).map(lambda b: b.replace(b"\0", b"x").replace(b"/", b"y"))
events = st.builds(
    RawEvent,
    wd=st.integers(-1, 2**31 - 1),
    mask=st.integers(0, 2**32 - 1),
    cookie=st.integers(0, 2**32 - 1),
    name=names,
)


@given(st.lists(events, max_size=40))
def test_any_records_round_trip(expected: list[RawEvent]) -> None:
    buf = b"".join(record(*e, padded(e.name)) for e in expected)
    assert parse_events(buf) == expected
    assert _parse_records(buf) == expected


@given(st.lists(events, min_size=1, max_size=40), st.integers(0, 4))
def test_records_of_one_size_take_the_uniform_path(expected: list[RawEvent], blocks: int) -> None:
    """Every name field the same size (long enough for the longest name): uniform path."""
    size = max(16 * blocks, *(padded(e.name) for e in expected))
    buf = b"".join(record(*e, size) for e in expected)
    assert _uniform_size(buf) == 16 + size
    assert parse_events(buf) == expected
    assert parse_events(buf) == _parse_records(buf)


@pytest.mark.parametrize(
    "sizes",
    [
        [16, 16, 32],
        [32, 16, 16, 16],  # 32 + 3 * 32 bytes: a multiple of the first size all the same
        [16, 0, 0, 16],
        [0, 16],
        [16, 48],  # 32 + 64: two records of 32 by length, but not by their len fields
    ],
    ids=["last-longer", "first-longer", "self-events-between", "self-event-first", "double"],
)
def test_mixed_sizes_take_the_general_path(sizes: list[int]) -> None:
    expected = [RawEvent(k + 1, CREATE, k, b"n%d" % k if s else b"") for k, s in enumerate(sizes)]
    buf = b"".join(record(*e, s) for e, s in zip(expected, sizes, strict=True))
    assert _uniform_size(buf) == 0
    assert parse_events(buf) == expected


def test_records_without_names_are_uniform_too() -> None:
    expected = [RawEvent(w, int(Mask.IGNORED), 0, b"") for w in range(1, 300)]
    buf = b"".join(record(*e, 0) for e in expected)
    assert _uniform_size(buf) == 16
    assert parse_events(buf) == expected


def test_name_bytes_that_look_like_len_fields_do_not_fool_the_check() -> None:
    """A name holding 0x20 bytes where the next record's len field would be, were all
    records 16 + 16 bytes: the first record's name field is 32, so no record boundary
    falls there and the check reads real len fields only."""
    first = RawEvent(1, CREATE, 0, b"\x20" * 31)
    second = RawEvent(2, CREATE, 0, b"a")
    buf = record(*first, 32) + record(*second, 16) + record(*second, 16)
    assert parse_events(buf) == [first, second, second]


@pytest.mark.parametrize(
    ("buf", "cut"),
    [
        (record(1, CREATE, 0, b"a", 16) * 3, 40),  # not a multiple of 32
        (record(1, CREATE, 0, b"a", 16) + record(1, CREATE, 0, b"b", 48), 64),  # 2 x 32
        (record(1, CREATE, 0, b"a", 16) * 3, 15),  # less than one header
    ],
    ids=["mid-record", "cut-at-a-multiple", "short-header"],
)
def test_truncated_buffers_are_refused(buf: bytes, cut: int) -> None:
    with pytest.raises(ValueError, match="truncated"):
        parse_events(buf[:cut])
