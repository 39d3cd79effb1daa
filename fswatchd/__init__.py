"""fswatchd: run rules on file events, through a recursive inotify(7) watcher that stays right.

The public surface is small and listed in ``__all__``; everything else is internal.
"""

from __future__ import annotations

from .errors import ActionError as ActionError
from .errors import CommandFailed as CommandFailed
from .errors import ConfigError as ConfigError
from .errors import FswatchdError as FswatchdError
from .errors import WatchError as WatchError
from .errors import WatchLimitError as WatchLimitError
from .errors import WebhookFailed as WebhookFailed
from .events import FsEvent as FsEvent
from .events import Mask as Mask
from .events import RawEvent as RawEvent

__version__ = "0.1.0"

__all__ = [
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
]
