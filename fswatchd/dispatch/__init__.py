"""The dispatcher: debounce, batches, per-rule and global limits, loop protection, shutdown.

See docs/dispatch.md for what an operator sees, and :class:`Dispatcher` for the API.
"""

from __future__ import annotations

from .dispatcher import Dispatcher as Dispatcher
from .model import DispatchRule as DispatchRule
from .model import DispatchSettings as DispatchSettings
from .model import DispatchStats as DispatchStats
from .model import EventIds as EventIds
from .model import MatchLike as MatchLike
from .model import RuleRuntime as RuleRuntime
from .model import Scheduler as Scheduler

__all__ = [
    "DispatchRule",
    "DispatchSettings",
    "DispatchStats",
    "Dispatcher",
    "EventIds",
    "MatchLike",
    "RuleRuntime",
    "Scheduler",
]
