"""``python -m fswatchd``: the same as the ``fswatchd`` command."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
