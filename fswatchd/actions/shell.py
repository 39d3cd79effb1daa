"""``shell:`` actions: the explicit opt-in to ``/bin/sh -c SCRIPT``.

The script is fixed text from the rules file; event data reaches it only through the
environment (``"$FSWATCHD_PATH"``), never by substitution into the script, so a file name
can never become shell syntax. The rules layer rejects ``{placeholders}`` in ``shell:``.
The runner, process group handling and logging are those of ``run:``
(:class:`fswatchd.actions.command.ChildAction`).
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from .base import Job
from .command import ChildAction

__all__ = ["SHELL", "ShellAction"]

#: The shell that runs ``shell:`` scripts (POSIX sh).
SHELL = b"/bin/sh"


class ShellAction(ChildAction):
    """A ``shell:`` action: ``/bin/sh -c SCRIPT``, event data in the environment only.

    Args:
        script: the script text (no placeholders).
        **kwargs: ``timeout``, ``grace``, ``cwd``, ``user``, ``group``, ``env``,
            ``spawner``, as for :class:`~fswatchd.actions.command.CommandAction`.
    Raises:
        ValueError: an empty script or a script holding NUL; the errors of CommandAction.
    """

    kind: ClassVar[str] = "shell"

    def __init__(self, script: str, **kwargs: Any) -> None:
        """See the class docstring."""
        if not script.strip() or "\0" in script:
            raise ValueError("shell: needs a non-empty script without NUL bytes")
        super().__init__(**kwargs)
        self.script = script
        self._script = os.fsencode(script)

    def argv(self, job: Job) -> list[bytes]:
        """``/bin/sh -c SCRIPT RULE``: the rule's name becomes ``$0``, so the shell's own
        error messages (``backup: 1: rsnc: not found``) name the rule."""
        return [SHELL, b"-c", self._script, os.fsencode(job.rule)]
