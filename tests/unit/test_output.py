"""The event line formats of ``fswatchd watch``: JSON lines and text (fswatchd.output)."""

from __future__ import annotations

import errno
import json
import os

import pytest

from fswatchd.events import FsEvent, Mask
from fswatchd.output import JsonLinesFormatter, TextFormatter, escape_text, json_path

CREATE = int(Mask.CREATE)
CLOSE_WRITE = int(Mask.CLOSE_WRITE)
DIR_CREATE = int(Mask.CREATE | Mask.ISDIR)
MOVED_TO_DIR = int(Mask.MOVED_TO | Mask.ISDIR)

HOSTILE_NAMES = [
    pytest.param(b"new\nline", id="newline"),
    pytest.param(b'quo"te', id="quote"),
    pytest.param(b"back\\slash", id="backslash"),
    pytest.param(b"tab\tcr\rbell\x07esc\x1b[31m", id="controls"),
    pytest.param(b"del\x7f", id="del"),
    pytest.param(b"\xff\xfe latin1 \xe9", id="invalid-utf8"),
    pytest.param("caf\u00e9 \u2603 \U0001f600".encode(), id="utf8"),
    pytest.param(b"csi\xc2\x9b31m", id="c1-control"),
    pytest.param(b"\xed\xb3\xbf", id="encoded-surrogate"),
    pytest.param(b"$(touch PWNED) `id` ; *", id="shell"),
    pytest.param(b"plain-name.txt", id="plain"),
]


def one_json(event: FsEvent) -> dict[str, object]:
    """Format one event, check it is exactly one ASCII line, and parse it."""
    data = JsonLinesFormatter().format([event])
    assert data.endswith(b"\n")
    assert data.count(b"\n") == 1
    assert data.isascii()
    obj = json.loads(data)
    assert isinstance(obj, dict)
    return obj


def test_json_ordinary_event_has_every_field() -> None:
    obj = one_json(FsEvent(b"/w/a.txt", CREATE, root=b"/w"))
    assert obj == {
        "path": "/w/a.txt",
        "mask": ["CREATE"],
        "is_dir": False,
        "src_path": None,
        "synthetic": False,
        "cookie": 0,
    }


def test_json_keys_in_documented_order() -> None:
    line = JsonLinesFormatter().format([FsEvent(b"/w/a", CREATE)])
    assert list(json.loads(line)) == ["path", "mask", "is_dir", "src_path", "synthetic", "cookie"]


def test_json_directory_synthetic_event() -> None:
    obj = one_json(FsEvent(b"/w/sub", DIR_CREATE, is_dir=True, synthetic=True))
    assert obj["mask"] == ["CREATE", "ISDIR"]
    assert obj["is_dir"] is True
    assert obj["synthetic"] is True


def test_json_paired_rename_has_src_path_and_cookie() -> None:
    event = FsEvent(b"/w/new", MOVED_TO_DIR, is_dir=True, src_path=b"/w/old", cookie=4711)
    obj = one_json(event)
    assert obj["mask"] == ["MOVED_TO", "ISDIR"]
    assert obj["src_path"] == "/w/old"
    assert obj["cookie"] == 4711


def test_json_unpaired_moved_from_keeps_cookie() -> None:
    obj = one_json(FsEvent(b"/w/gone", int(Mask.MOVED_FROM), cookie=9))
    assert (obj["src_path"], obj["cookie"]) == (None, 9)


def test_json_overflow_line() -> None:
    obj = one_json(FsEvent(None, int(Mask.Q_OVERFLOW)))
    assert obj["path"] is None
    assert obj["mask"] == ["Q_OVERFLOW"]
    assert "errno" not in obj


def test_json_error_line_names_errno_and_message() -> None:
    message = "cannot watch /w/deep: raise fs.inotify.max_user_watches"
    event = FsEvent(
        b"/w/deep", int(Mask.ERROR | Mask.ISDIR), is_dir=True, errno=errno.ENOSPC, message=message
    )
    obj = one_json(event)
    assert obj["mask"] == ["ERROR", "ISDIR"]
    assert obj["errno"] == "ENOSPC"
    assert obj["message"] == message
    assert obj["path"] == "/w/deep"


def test_json_error_line_with_non_utf8_message_round_trips() -> None:
    message = os.fsdecode(b"cannot watch /w/\xff: permission denied")
    obj = one_json(FsEvent(b"/w/\xff", int(Mask.ERROR), errno=errno.EACCES, message=message))
    assert obj["errno"] == "EACCES"
    assert os.fsencode(str(obj["message"])) == b"cannot watch /w/\xff: permission denied"


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_json_path_round_trips_byte_exact(name: bytes) -> None:
    path = b"/w/dir/" + name
    src = b"/w/" + name + b".old"
    obj = one_json(FsEvent(path, int(Mask.MOVED_TO), src_path=src, cookie=3))
    assert os.fsencode(str(obj["path"])) == path
    assert os.fsencode(str(obj["src_path"])) == src
    assert str(obj["path"]).encode("utf-8", "surrogateescape") == path


def test_json_invalid_utf8_uses_surrogateescape_escapes() -> None:
    assert json_path(b"/w/\xff") == b'"/w/\\udcff"'
    assert json_path(None) == b"null"


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_json_hostile_name_in_a_batch_of_plain_ones(name: bytes) -> None:
    """1. A batch mixes ordinary events with one hostile name (the slow path of a batch).
    2. Every line parses, in order, and every path round-trips."""
    paths = [b"/w/a", b"/w/" + name, b"/w/b"]
    events = [FsEvent(p, CREATE) for p in paths] + [FsEvent(None, int(Mask.Q_OVERFLOW))]
    lines = JsonLinesFormatter().format(events).splitlines()
    assert len(lines) == 4
    got = [json.loads(line)["path"] for line in lines]
    assert [os.fsencode(p) for p in got[:3]] == paths
    assert got[3] is None


def test_json_batch_matches_one_at_a_time_and_reuses_cached_tails() -> None:
    """1. A batch exercising the cache: repeated masks, dir/file, synthetic or not.
    2. Formatting it as a batch, with a fresh and with a warm formatter, equals formatting
       each event alone, and equals json.dumps of the expected objects."""
    events = []
    expected = []
    for i in range(40):
        is_dir = i % 3 == 0
        names = (["CREATE"] if i % 2 else ["CLOSE_WRITE"]) + ["ISDIR"] * is_dir
        mask = int(Mask.CREATE if i % 2 else Mask.CLOSE_WRITE) | (int(Mask.ISDIR) * is_dir)
        event = FsEvent(b"/w/f%d" % i, mask, is_dir=is_dir, synthetic=i % 5 == 0)
        events.append(event)
        expected.append(
            {
                "path": f"/w/f{i}",
                "mask": names,
                "is_dir": is_dir,
                "src_path": None,
                "synthetic": event.synthetic,
                "cookie": 0,
            }
        )
    warm = JsonLinesFormatter()
    first = warm.format(events)
    assert warm.format(events) == first
    assert b"".join(JsonLinesFormatter().format([e]) for e in events) == first
    assert [json.loads(line) for line in first.splitlines()] == expected


def test_json_cache_does_not_leak_between_special_and_ordinary_events() -> None:
    """1. An ordinary CREATE warms the cache for its mask.
    2. A CREATE with the same mask but a rename source and cookie, then an ERROR and an
       overflow, still get their own fields."""
    fmt = JsonLinesFormatter()
    fmt.format([FsEvent(b"/w/a", CREATE)])
    lines = fmt.format(
        [
            FsEvent(b"/w/b", CREATE, src_path=b"/w/x", cookie=5),
            FsEvent(b"/w/c", int(Mask.ERROR), errno=errno.EACCES, message="m"),
            FsEvent(b"/w/c", int(Mask.ERROR), errno=errno.ENOSPC, message="n"),
            FsEvent(None, int(Mask.Q_OVERFLOW)),
        ]
    ).splitlines()
    objs = [json.loads(line) for line in lines]
    assert (objs[0]["src_path"], objs[0]["cookie"]) == ("/w/x", 5)
    assert (objs[1]["errno"], objs[2]["errno"]) == ("EACCES", "ENOSPC")
    assert objs[3]["path"] is None


def test_json_empty_batch() -> None:
    assert JsonLinesFormatter().format([]) == b""


def test_text_columns_and_markers() -> None:
    fmt = TextFormatter()
    lines = fmt.format(
        [
            FsEvent(b"/w/sub", DIR_CREATE, is_dir=True),
            FsEvent(b"/w/sub/f", CREATE, synthetic=True),
            FsEvent(b"/w/new", int(Mask.MOVED_TO), src_path=b"/w/old", cookie=7),
            FsEvent(None, int(Mask.Q_OVERFLOW)),
            FsEvent(b"/w/d", int(Mask.ERROR), errno=errno.ENOSPC, message="raise the limit"),
        ]
    ).split(b"\n")
    assert lines[-1] == b""
    assert lines[0] == b"CREATE,ISDIR           /w/sub"
    assert lines[1] == b"CREATE (scan)          /w/sub/f"
    assert lines[2] == b"MOVED_TO               /w/old -> /w/new"
    assert lines[3].startswith(b"Q_OVERFLOW             (")
    assert lines[4] == b"ERROR                  /w/d (ENOSPC: raise the limit)"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        pytest.param(b"/w/a b", b"/w/a b", id="space-kept"),
        pytest.param(b'/w/"q"', b'/w/"q"', id="quote-kept"),
        pytest.param(b"/w/a\nb", b"/w/a\\nb", id="newline"),
        pytest.param(b"/w/a\tb\rc", b"/w/a\\tb\\rc", id="tab-cr"),
        pytest.param(b"/w/a\\nb", b"/w/a\\\\nb", id="literal-backslash-n"),
        pytest.param(b"/w/\x1b[2J\x07", b"/w/\\x1b[2J\\x07", id="terminal-escape"),
        pytest.param(b"/w/\x7f", b"/w/\\x7f", id="del"),
        pytest.param(b"/w/\xff\xfe", b"/w/\\xff\\xfe", id="invalid-utf8"),
        pytest.param(b"/w/\xc2\x9b1m", b"/w/\\xc2\\x9b1m", id="c1-csi"),
        pytest.param("/w/caf\u00e9".encode(), "/w/caf\u00e9".encode(), id="utf8-kept"),
        pytest.param(b"/w/\xe2\x80\xae", b"/w/\\xe2\\x80\\xae", id="bidi-override"),
    ],
)
def test_text_escaping(raw: bytes, shown: bytes) -> None:
    assert escape_text(raw) == shown
    line = TextFormatter().format([FsEvent(raw, CREATE)])
    assert line.count(b"\n") == 1
    assert line.endswith(b" " + shown + b"\n")


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_text_no_name_forges_a_line_or_a_control(name: bytes) -> None:
    data = TextFormatter().format(
        [FsEvent(b"/w/" + name, CREATE), FsEvent(b"/w/x", CREATE, src_path=b"/w/" + name)]
    )
    assert data.count(b"\n") == 2
    text = data.decode("utf-8")  # always valid UTF-8
    assert all(c.isprintable() for c in text.replace("\n", ""))


def test_text_escaping_is_unambiguous() -> None:
    # A real newline and a literal backslash-n must not look the same.
    assert escape_text(b"a\nb") != escape_text(b"a\\nb")
    # A raw 0x9b byte and the encoded C1 character U+009B must not look the same.
    assert escape_text(b"\x9b") != escape_text(b"\xc2\x9b")
