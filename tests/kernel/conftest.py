"""Fixtures shared by the kernel tests (helpers live in watchkit.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def tree(tmp_path: Path) -> bytes:
    """An empty directory ``tmp_path/tree`` to watch (bytes)."""
    path = tmp_path / "tree"
    path.mkdir()
    return bytes(path)
