"""Parse the bytes read from an inotify fd into :class:`~fswatchd.events.RawEvent` records.

The layout is ``struct inotify_event`` from inotify(7)::

    int      wd;      /* watch descriptor, -1 for IN_Q_OVERFLOW */
    uint32_t mask;
    uint32_t cookie;
    uint32_t len;     /* size of name[], NUL padding included */
    char     name[];  /* NUL-terminated, padded with NULs to an alignment boundary */

The kernel only writes whole records, so a truncated record means the bytes did not come
from one read(2) of an inotify fd; :func:`parse_events` refuses them.
"""

from __future__ import annotations

import struct

from ..events import RawEvent

__all__ = ["HEADER_SIZE", "parse_events"]

_HEADER = struct.Struct("iIII")
#: Size of the fixed part of a record (wd, mask, cookie, len), in bytes.
HEADER_SIZE = _HEADER.size

# Building the NamedTuple through tuple.__new__ skips RawEvent.__new__'s Python frame;
# it costs about 110 ns per record, a quarter of the parse.
_tuple_new = tuple.__new__


def parse_events(buf: bytes | bytearray | memoryview) -> list[RawEvent]:
    """Split one read(2) of an inotify fd into records, in order.

    Args:
        buf: the bytes read, any number of whole records (``b""`` gives ``[]``).
    Returns:
        one ``RawEvent(wd, mask, cookie, name)`` per record; ``name`` has all its trailing
        NUL padding removed (``b""`` for events on the watched object itself and for the
        wd -1 ``IN_Q_OVERFLOW`` record). Names are raw bytes, never decoded.
    Raises:
        ValueError: the buffer ends inside a record (header or name).
    """
    # One bytes copy makes every name slice a bytes object directly (a memoryview slice
    # would need a second copy through .tobytes()); it costs one memcpy per read.
    data = buf if type(buf) is bytes else bytes(buf)
    end = len(data)
    events: list[RawEvent] = []
    append = events.append
    unpack_from = _HEADER.unpack_from
    new = _tuple_new
    cls = RawEvent
    pos = 0
    try:
        while pos < end:
            wd, mask, cookie, length = unpack_from(data, pos)
            pos += 16
            if length:
                name = data[pos : pos + length].rstrip(b"\0")
                pos += length
            else:
                name = b""
            append(new(cls, (wd, mask, cookie, name)))
    except struct.error:
        raise ValueError(
            f"inotify buffer truncated: {end - pos} byte(s) at offset {pos} "
            f"are less than a {HEADER_SIZE}-byte record header"
        ) from None
    # A name running past the end is the only other truncation, and it can only be the
    # last record's: checking once after the loop keeps the check off the per-record path.
    if pos > end:
        raise ValueError(
            f"inotify buffer truncated: the last record's name ends at {pos}, past {end}"
        )
    return events
