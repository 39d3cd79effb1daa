"""The public surface is deliberate: ``fswatchd.__all__`` changes only with this list."""

from __future__ import annotations

import errno

import fswatchd

EXPECTED = {
    "ActionError",
    "CommandFailed",
    "ConfigError",
    "FsEvent",
    "FswatchdError",
    "Mask",
    "RawEvent",
    "WatchError",
    "WatchLimitError",
    "WebhookFailed",
    "__version__",
}


def test_public_names_are_the_checked_in_list() -> None:
    assert set(fswatchd.__all__) == EXPECTED


def test_every_public_name_exists() -> None:
    for name in fswatchd.__all__:
        assert hasattr(fswatchd, name), name


def test_watch_error_says_its_message_once() -> None:
    err = fswatchd.WatchError(errno.ENOENT, "cannot watch root '/x': No such file", "/x")
    assert str(err) == "cannot watch root '/x': No such file"
    assert (err.errno, err.filename) == (errno.ENOENT, "/x")
