"""fswatchd's private inotify(7) core: the libc binding, flags, record parser, fd and reader.

Nothing outside this package imports ctypes or struct, or knows the record layout.
"""

from __future__ import annotations

from .flags import Cookie as Cookie
from .flags import InitFlag as InitFlag
from .flags import Mask as Mask
from .flags import Wd as Wd
from .flags import mask_names as mask_names
from .flags import parse_mask as parse_mask

__all__ = ["Cookie", "InitFlag", "Mask", "Wd", "mask_names", "parse_mask"]
