"""The recursive watcher: a tree of watched directories kept right under every kernel quirk.

``RecursiveWatcher`` (with ``Root``) is the interface; ``WatchTree`` and ``MovePairer`` are
the pure bookkeeping it is built from.
"""

from __future__ import annotations

from .moves import MovePairer as MovePairer
from .recursive import RecursiveWatcher as RecursiveWatcher
from .recursive import Root as Root
from .tree import WatchTree as WatchTree

__all__ = ["MovePairer", "RecursiveWatcher", "Root", "WatchTree"]
