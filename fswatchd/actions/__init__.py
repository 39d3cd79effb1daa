"""Actions: what a rule does for a matched event - run an argv, run a shell script, POST.

Each action takes a :class:`Job` and returns an :class:`Outcome`; failures are outcomes,
not exceptions. See docs/actions.md for the operator's view.
"""

from __future__ import annotations

from .base import Action as Action
from .base import Job as Job
from .base import Outcome as Outcome
from .command import CommandAction as CommandAction
from .command import install_child_watcher as install_child_watcher
from .env import job_env as job_env
from .env import job_values as job_values
from .shell import ShellAction as ShellAction
from .webhook import WebhookAction as WebhookAction
from .webhook import make_session as make_session

__all__ = [
    "Action",
    "CommandAction",
    "Job",
    "Outcome",
    "ShellAction",
    "WebhookAction",
    "install_child_watcher",
    "job_env",
    "job_values",
    "make_session",
]
