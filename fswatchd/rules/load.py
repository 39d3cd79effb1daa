"""Read a rules file (or a directory of them), validate it, and build the RuleSet.

Every problem is a :class:`~fswatchd.errors.ConfigError` naming file, line and key path;
nothing is half-loaded. A directory holds ``*.yaml`` files read in name order into one rule
namespace. Running as root, a file another user could change is refused, as cron(8) and
sudo(8) refuse theirs: its commands would run as root.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from pydantic import ValidationError

from ..errors import ConfigError
from .errmap import config_error
from .model import Config
from .ruleset import RuleEntry, RuleSet, compile_rule
from .yamlpos import KeyPath, Lines, load_yaml

__all__ = ["DEFAULT_CONFIG", "config_path", "load_ruleset", "loads"]

#: The rules file used when neither ``-c`` nor ``$FSWATCHD_CONFIG`` names one.
DEFAULT_CONFIG = "/etc/fswatchd/rules.yaml"


def config_path(given: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """The rules path to use: ``given`` (``-c``), else ``$FSWATCHD_CONFIG``, else the default.

    Args:
        given: the command line's value, or None.
        environ: the environment to read ``FSWATCHD_CONFIG`` from.
    Returns:
        a path (file or directory), not checked.
    """
    return given or environ.get("FSWATCHD_CONFIG") or DEFAULT_CONFIG


class _Doc(NamedTuple):
    """One validated file: its config, its line map, and whether it set ``settings:``."""

    file: str
    config: Config
    lines: Lines
    has_settings: bool


def load_ruleset(path: str | os.PathLike[str], *, euid: int | None = None) -> RuleSet:
    """Load, validate and compile the rules at ``path``.

    Args:
        path: a rules file, or a directory whose ``*.yaml`` files (not hidden ones) are
            read in name order as one set of rules.
        euid: the effective uid to check ownership for (default ``os.geteuid()``); as
            root (0), a file or directory owned by another user or writable by group or
            others is refused.
    Returns:
        the :class:`RuleSet`.
    Raises:
        ConfigError: unreadable or unsafe file, YAML error, invalid rule, duplicate rule
            name across files, ``settings:`` in two files, no rules at all.
    """
    path = os.fspath(path)
    euid = os.geteuid() if euid is None else euid
    st = _stat(path)
    _check_owner(path, st, euid)
    files = _yaml_files(path, euid) if stat.S_ISDIR(st.st_mode) else [path]
    return _ruleset([_parse(f, _read(f)) for f in files])


def loads(text: str, file: str = "<string>") -> RuleSet:
    """Build a RuleSet from the text of one rules file (no ownership check).

    Args:
        text: the YAML document.
        file: the name used in error messages.
    Raises:
        ConfigError: as :func:`load_ruleset`.
    """
    return _ruleset([_parse(file, text)])


def _stat(path: str) -> os.stat_result:
    try:
        return os.stat(path)
    except OSError as exc:
        raise ConfigError(path, None, "", f"cannot read the rules: {exc.strerror}") from exc


def _check_owner(path: str, st: os.stat_result, euid: int) -> None:
    """Refuse, as root, what another user could write (cron(8), sudoers(5) do the same)."""
    if euid != 0:
        return
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        mode = stat.S_IMODE(st.st_mode)
        raise ConfigError(
            path,
            None,
            "",
            f"refusing rules writable by group or others (mode {mode:04o}): "
            f"its commands would run as root (chmod go-w {path})",
        )
    if st.st_uid != euid:
        raise ConfigError(
            path,
            None,
            "",
            f"refusing rules owned by uid {st.st_uid}, not root: its commands "
            f"would run as root (chown root {path})",
        )


def _yaml_files(directory: str, euid: int) -> list[str]:
    """The ``*.yaml`` regular files of ``directory``, by name, each ownership-checked."""
    try:
        names = sorted(n for n in os.listdir(directory) if n.endswith(".yaml"))
    except OSError as exc:
        raise ConfigError(directory, None, "", f"cannot list: {exc.strerror}") from exc
    files = []
    for name in names:
        if name.startswith("."):
            continue  # editor scratch such as .#rules.yaml, .rules.yaml.swp
        full = os.path.join(directory, name)
        st = _stat(full)
        if stat.S_ISREG(st.st_mode):
            _check_owner(full, st, euid)
            files.append(full)
    if not files:
        raise ConfigError(directory, None, "", "no *.yaml rules files in this directory")
    return files


def _read(file: str) -> str:
    try:
        with open(file, encoding="utf-8") as f:
            return f.read()
    except UnicodeDecodeError as exc:
        raise ConfigError(file, None, "", f"not UTF-8 text: {exc.reason}") from exc
    except OSError as exc:
        raise ConfigError(file, None, "", f"cannot read: {exc.strerror}") from exc


def _parse(file: str, text: str) -> _Doc:
    """Validate one document into a :class:`Config`."""
    data, lines = load_yaml(text, file)
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(file, lines.get(()), "", "the document must be a mapping with rules:")
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise config_error(exc, file, lines) from None
    return _Doc(file, config, lines, "settings" in data)


def _ruleset(docs: Sequence[_Doc]) -> RuleSet:
    """Merge validated documents into one RuleSet; names are unique across files."""
    _one_settings(docs)
    entries: list[RuleEntry] = []
    seen: dict[str, tuple[str, int | None]] = {}
    for doc in docs:
        below = _lines_by_rule(doc.lines)
        for i, rule in enumerate(doc.config.rules):
            line = doc.lines.get(("rules", i))
            if rule.name in seen:
                other, other_line = seen[rule.name]
                raise ConfigError(
                    doc.file,
                    doc.lines.get(("rules", i, "name")),
                    f"rules[{i}].name",
                    f"duplicate rule name {rule.name!r} (also in {other}:{other_line})",
                )
            seen[rule.name] = (doc.file, line)
            files = [w for w in rule.watch if _is_file(w)]
            key = f"rules[{i}]"
            entry = compile_rule(rule, files, file=doc.file, line=line, key=key, lines=below.get(i))
            entries.append(entry)
    if not entries:
        where = docs[0].file if len(docs) == 1 else os.path.dirname(docs[0].file)
        raise ConfigError(where, None, "rules", "no rules: add at least one under rules:")
    settings = next((d.config.settings for d in docs if d.has_settings), None)
    return RuleSet(entries, settings, [d.file for d in docs])


def _lines_by_rule(lines: Lines) -> dict[int, dict[KeyPath, int]]:
    """Rule index -> the lines of that rule's keys, as paths below ``rules[i]``."""
    out: dict[int, dict[KeyPath, int]] = {}
    for path, line in lines.items():
        if len(path) > 2 and path[0] == "rules" and isinstance(path[1], int):
            out.setdefault(path[1], {})[path[2:]] = line
    return out


def _one_settings(docs: Sequence[_Doc]) -> None:
    with_settings = [d for d in docs if d.has_settings]
    if len(with_settings) > 1:
        first, second = with_settings[:2]
        raise ConfigError(
            second.file,
            second.lines.get(("settings",)),
            "settings",
            f"settings: is already given in {first.file}; keep it in one file",
        )


def _is_file(watch: str) -> bool:
    """Whether a ``watch:`` path names an existing non-directory (then it is followed by name).

    A path that does not exist is taken as a directory: fswatchd cannot tell otherwise.
    """
    try:
        return not stat.S_ISDIR(os.stat(watch).st_mode)
    except OSError:
        return False
