"""The shipped systemd files: units lint clean, the catalog covers every MESSAGE_ID and
compiles, the units agree with the code and with ``make install``."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from fswatchd import message_ids
from fswatchd.cli import EXIT_CONFIG

REPO = Path(__file__).resolve().parents[2]
SYSTEMD = REPO / "systemd"
UNIT_LINT = REPO.parent / "shared" / "tools" / "unit-lint"
UNITS = ["fswatchd.service", "fswatchd@.service"]
IDS = {name: value for name, value in vars(message_ids).items() if name.startswith("MESSAGE_ID_")}

needs_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None or not UNIT_LINT.exists(),
    reason="systemd-analyze (package systemd) or shared/tools/unit-lint is missing",
)


def service(name: str) -> configparser.ConfigParser:
    # strict=False: ExecReload= appears twice, as systemd allows.
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(SYSTEMD / name)
    return parser


@needs_analyze
@pytest.mark.parametrize("name", UNITS)
def test_unit_lints_clean(name: str) -> None:
    r = subprocess.run(
        [str(UNIT_LINT), "--allow-missing-exec", str(SYSTEMD / name)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr


@needs_analyze
def test_template_instance_lints_clean(tmp_path: Path) -> None:
    """%i expands in every setting of the template (StateDirectory=, the -c path)."""
    instance = tmp_path / "fswatchd@media.service"
    instance.write_text((SYSTEMD / "fswatchd@.service").read_text())
    r = subprocess.run(
        [str(UNIT_LINT), "--allow-missing-exec", str(instance)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("name", UNITS)
def test_unit_agrees_with_the_code(name: str) -> None:
    s = service(name)["Service"]
    assert s["Type"] == "notify"
    assert s["RestartPreventExitStatus"] == str(EXIT_CONFIG)
    assert s["ExecStart"].startswith("/usr/local/bin/fswatchd run -c /etc/fswatchd/")
    assert s["KillMode"] == "mixed"
    for setting in ("NoNewPrivileges", "ProtectHome", "ProtectSystem", "PrivateTmp"):
        assert setting not in s, f"{setting}= would break actions; it belongs in a drop-in"


def test_reload_checks_the_file_before_signalling() -> None:
    text = (SYSTEMD / "fswatchd.service").read_text()
    reloads = re.findall(r"^ExecReload=(.*)$", text, re.M)
    assert reloads == [
        "/usr/local/bin/fswatchd check -c /etc/fswatchd/rules.yaml",
        "/bin/kill -HUP $MAINPID",
    ]


def test_make_install_uses_the_paths_the_units_name() -> None:
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^PREFIX\s*\?=\s*/usr/local$", makefile, re.M)
    assert re.search(r"^BINDIR\s*\?=\s*\$\(PREFIX\)/bin$", makefile, re.M)
    assert re.search(r"^CONFDIR\s*\?=\s*/etc/fswatchd$", makefile, re.M)


def catalog_entries() -> dict[str, str]:
    text = (SYSTEMD / "fswatchd.catalog").read_text()
    parts = re.split(r"^-- ([0-9a-f]{32})$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_catalog_explains_every_message_id() -> None:
    entries = catalog_entries()
    assert set(entries) == set(IDS.values())
    for body in entries.values():
        assert re.search(r"^Subject: \S", body, re.M)
        assert "Defined-By: fswatchd" in body


def test_message_ids_are_distinct_128_bit_hex() -> None:
    assert len(set(IDS.values())) == len(IDS)
    assert all(re.fullmatch(r"[0-9a-f]{32}", v) for v in IDS.values())


def test_action_ids_match_the_actions_module() -> None:
    base = pytest.importorskip("fswatchd.actions.base")
    for name in ("MESSAGE_ID_ACTION_OK", "MESSAGE_ID_ACTION_FAILED", "MESSAGE_ID_ACTION_RETRY"):
        assert getattr(base, name) == IDS[name], name


@pytest.mark.skipif(shutil.which("journalctl") is None, reason="journalctl is missing")
def test_catalog_compiles(tmp_path: Path) -> None:
    """journalctl --update-catalog reads it from where make install puts it."""
    target = tmp_path / "usr/local/lib/systemd/catalog"
    target.mkdir(parents=True)
    shutil.copy(SYSTEMD / "fswatchd.catalog", target)
    root = f"--root={tmp_path}"
    subprocess.run(["journalctl", root, "--update-catalog"], check=True, timeout=60)
    listed = subprocess.run(
        ["journalctl", root, "--list-catalog"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert {line.split()[0] for line in listed.splitlines() if "fswatchd" in line} == set(
        IDS.values()
    )


def test_sysctl_file_raises_the_inotify_limits() -> None:
    settings = dict(
        line.split("=", 1)
        for line in (SYSTEMD / "sysctl" / "60-fswatchd.conf").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    values = {k.strip(): int(v) for k, v in settings.items()}
    assert values["fs.inotify.max_user_watches"] >= 524288
    assert values["fs.inotify.max_queued_events"] > 16384  # the kernel default
