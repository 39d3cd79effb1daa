"""fswatchd's private inotify(7) core: the libc binding, flags, record parser, fd and reader.

Nothing outside this package imports ctypes or struct, or knows the record layout.

``parse_events`` and ``InotifyReader`` are imported from their modules
(``fswatchd._inotify.parse``, ``fswatchd._inotify.reader``), not from here: they use
``fswatchd.events.RawEvent``, and ``fswatchd.events`` itself imports this package's flags,
so re-exporting them here would make an import cycle.
"""

from __future__ import annotations

from .fd import DEFAULT_READ_SIZE as DEFAULT_READ_SIZE
from .fd import InotifyFd as InotifyFd
from .flags import Cookie as Cookie
from .flags import InitFlag as InitFlag
from .flags import Mask as Mask
from .flags import Wd as Wd
from .flags import mask_names as mask_names
from .flags import parse_mask as parse_mask
from .limits import instance_limit as instance_limit
from .limits import queued_events_limit as queued_events_limit
from .limits import watch_limit as watch_limit

__all__ = [
    "DEFAULT_READ_SIZE",
    "Cookie",
    "InitFlag",
    "InotifyFd",
    "Mask",
    "Wd",
    "instance_limit",
    "mask_names",
    "parse_mask",
    "queued_events_limit",
    "watch_limit",
]
