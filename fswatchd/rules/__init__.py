"""Rules: the rules file (load and validate), the compiled RuleSet, the matcher, warnings.

The supervisor loads a :class:`RuleSet` with :func:`load_ruleset`, gives the watcher
``roots()``, ``mask`` and ``should_watch``, and gives each event to :func:`match`.
docs/config.md is the operator's reference for the file format.
"""

from __future__ import annotations

from .checks import warnings as warnings
from .estimate import Estimate as Estimate
from .estimate import count_watches as count_watches
from .globs import DEFAULT_EXCLUDES as DEFAULT_EXCLUDES
from .load import DEFAULT_CONFIG as DEFAULT_CONFIG
from .load import config_path as config_path
from .load import load_ruleset as load_ruleset
from .load import loads as loads
from .match import Match as Match
from .match import match as match
from .model import Action as Action
from .model import Batch as Batch
from .model import Config as Config
from .model import Rule as Rule
from .model import RunAction as RunAction
from .model import Settings as Settings
from .model import ShellAction as ShellAction
from .model import Webhook as Webhook
from .model import WebhookAction as WebhookAction
from .ruleset import Root as Root
from .ruleset import RuleEntry as RuleEntry
from .ruleset import RuleSet as RuleSet

__all__ = [
    "DEFAULT_CONFIG",
    "DEFAULT_EXCLUDES",
    "Action",
    "Batch",
    "Config",
    "Estimate",
    "Match",
    "Root",
    "Rule",
    "RuleEntry",
    "RuleSet",
    "RunAction",
    "Settings",
    "ShellAction",
    "Webhook",
    "WebhookAction",
    "config_path",
    "count_watches",
    "load_ruleset",
    "loads",
    "match",
    "warnings",
]
