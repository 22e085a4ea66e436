"""``summaryd install-service`` / ``uninstall-service``, against a fake ``systemctl``.

The fake ``systemctl --user`` records its arguments and whether the unit file
existed, so enabling, reloading, the printed fallback steps (no systemctl, no
user manager), ``--env``, ``--print`` and uninstalling are checked without a
systemd user manager.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from summaryd.daemon.service import UNIT_NAME, render_unit

from .service_helpers import unit_environment

pytestmark = pytest.mark.integration

EXIT_NO_MANAGER = 4


# -- install-service / uninstall-service ------------------------------------------

FAKE_SYSTEMCTL = """\
#!/bin/sh
# Stands in for `systemctl --user`: records each call and whether the unit file
# existed at that moment.
if [ -e "$FAKE_UNIT" ]; then state=present; else state=absent; fi
printf '%s|%s\\n' "$*" "$state" >> "$FAKE_LOG"
case "$*" in
  "--user show-environment")
    if [ -n "$FAKE_NO_MANAGER" ]; then
      echo "Failed to connect to bus: No medium found" >&2
      exit 1
    fi
    echo "HOME=$HOME"
    echo "XDG_RUNTIME_DIR=$FAKE_MANAGER_XDG_RUNTIME_DIR"
    if [ -n "$XDG_CONFIG_HOME" ]; then echo "XDG_CONFIG_HOME=$XDG_CONFIG_HOME"; fi
    ;;
  "--user enable"*)
    if [ -n "$FAKE_FAIL_ENABLE" ]; then
      echo "Failed to enable unit: something" >&2
      exit 1
    fi
    ;;
esac
exit 0
"""


class Home:
    """A home directory, config directory and PATH for install-service to use."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bin = root / "bin"
        self.bin.mkdir()
        self.log = root / "systemctl.log"
        self.config = root / "cfg"
        self.unit = self.config / "systemd" / "user" / UNIT_NAME
        xdg = str(root / "xdg")
        self.env = {
            "HOME": str(root / "home"),
            "XDG_CONFIG_HOME": str(self.config),
            "XDG_RUNTIME_DIR": xdg,
            "PATH": str(self.bin),
            "FAKE_LOG": str(self.log),
            "FAKE_UNIT": str(self.unit),
            "FAKE_MANAGER_XDG_RUNTIME_DIR": xdg,
        }

    def fake_systemctl(self) -> None:
        exe = self.bin / "systemctl"
        exe.write_text(FAKE_SYSTEMCTL)
        exe.chmod(0o755)

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def summaryd(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "summaryd.daemon", *args],
            env=self.env | env,
            capture_output=True,
            text=True,
            timeout=120,
        )


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path)


def test_install_now_reloads_then_enables(home: Home) -> None:
    home.fake_systemctl()
    r = home.summaryd("install-service", "--now")
    assert r.returncode == 0, r.stdout + r.stderr
    assert home.unit.read_text() == render_unit(sys.executable, {})
    assert home.calls() == [
        "--user show-environment|present",
        "--user daemon-reload|present",
        f"--user enable --now {UNIT_NAME}|present",
    ]
    assert "enabled and running" in r.stdout
    assert "warning" not in r.stderr

    r = home.summaryd("install-service", "--now")  # again: same file, same steps
    assert r.returncode == 0 and "unchanged" in r.stdout


def test_install_without_now_and_without_xdg_config_home(home: Home) -> None:
    home.fake_systemctl()
    del home.env["XDG_CONFIG_HOME"]
    home.env["FAKE_UNIT"] = str(Path(home.env["HOME"]) / ".config/systemd/user" / UNIT_NAME)
    r = home.summaryd("install-service", XDG_CONFIG_HOME="relative/is/ignored")
    assert r.returncode == 0, r.stdout + r.stderr
    unit = Path(home.env["FAKE_UNIT"])
    assert unit.read_text() == render_unit(sys.executable, {})
    assert not home.unit.exists()
    assert home.calls()[-1] == f"--user enable {UNIT_NAME}|present"
    assert "systemctl --user start summaryd" in r.stdout


def test_install_without_systemctl_prints_the_steps(home: Home) -> None:
    r = home.summaryd("install-service", "--now")
    assert r.returncode == EXIT_NO_MANAGER, r.stdout + r.stderr
    assert home.unit.read_text() == render_unit(sys.executable, {})
    assert "systemctl is not on PATH" in r.stderr
    assert "systemctl --user daemon-reload" in r.stdout
    assert f"systemctl --user enable --now {UNIT_NAME}" in r.stdout


def test_install_without_user_manager_prints_the_steps(home: Home) -> None:
    home.fake_systemctl()
    r = home.summaryd("install-service", "--now", FAKE_NO_MANAGER="1")
    assert r.returncode == EXIT_NO_MANAGER, r.stdout + r.stderr
    assert home.unit.exists()
    assert home.calls() == ["--user show-environment|present"]
    assert "No medium found" in r.stderr
    assert f"systemctl --user enable --now {UNIT_NAME}" in r.stdout


def test_install_reports_a_failed_enable(home: Home) -> None:
    home.fake_systemctl()
    r = home.summaryd("install-service", "--now", FAKE_FAIL_ENABLE="1")
    assert r.returncode == 1
    assert "Failed to enable unit" in r.stderr and "journalctl --user -u summaryd" in r.stderr


def test_install_warns_when_clients_would_look_elsewhere(home: Home, tmp_path: Path) -> None:
    home.fake_systemctl()
    other = str(tmp_path / "elsewhere")
    r = home.summaryd("install-service", SUMMARYD_RUNTIME_DIR=other)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "warning" in r.stderr and other in r.stderr
    assert str(tmp_path / "xdg" / "summaryd") in r.stderr


def test_install_env_option(home: Home) -> None:
    home.fake_systemctl()
    r = home.summaryd("install-service", "--env", "SUMMARYD_MAX_LATENCY=0.5")
    assert r.returncode == 0, r.stdout + r.stderr
    text = home.unit.read_text()
    assert text == render_unit(sys.executable, {"SUMMARYD_MAX_LATENCY": "0.5"})
    assert unit_environment(text)["SUMMARYD_MAX_LATENCY"] == "0.5"
    home.unit.unlink()
    for bad in ("SUMMARYD_RUNTIME_DIR=/x", "SUMMARYD_RING_PREFIX=p", "SUMMARYD_IDLE_EXIT=5", "X"):
        r = home.summaryd("install-service", "--env", bad)
        assert r.returncode == 2, bad
        assert r.stderr.startswith("summaryd: --env"), r.stderr
    assert not home.unit.exists()


def test_install_print_writes_nothing(home: Home) -> None:
    r = home.summaryd("install-service", "--print")
    assert r.returncode == 0
    assert r.stdout == render_unit(sys.executable, {})
    assert not home.unit.exists() and home.calls() == []


def test_uninstall_disables_then_removes(home: Home) -> None:
    home.fake_systemctl()
    assert home.summaryd("install-service", "--now").returncode == 0
    home.log.unlink()
    r = home.summaryd("uninstall-service")
    assert r.returncode == 0, r.stdout + r.stderr
    assert not home.unit.exists()
    assert home.calls() == [
        "--user show-environment|present",
        f"--user disable --now {UNIT_NAME}|present",
        "--user daemon-reload|absent",
        f"--user reset-failed {UNIT_NAME}|absent",
    ]

    r = home.summaryd("uninstall-service")
    assert r.returncode == 0 and "not installed" in r.stdout


def test_uninstall_without_user_manager_removes_file_and_link(home: Home) -> None:
    assert home.summaryd("install-service").returncode == EXIT_NO_MANAGER
    wants = home.unit.parent / "default.target.wants" / UNIT_NAME
    wants.parent.mkdir()
    wants.symlink_to(home.unit)  # enabled earlier, when a manager ran
    r = home.summaryd("uninstall-service")
    assert r.returncode == 0, r.stdout + r.stderr
    assert not home.unit.exists() and not wants.is_symlink()
    assert "nothing was stopped" in r.stdout
