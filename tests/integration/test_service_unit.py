"""The systemd user unit's text: rendered as checked in, its settings, its quoting.

``systemd-analyze verify`` parses the rendered unit where systemd-analyze is
installed (there is no systemd user manager in CI, so the unit's contract is
checked piece by piece; ``test_service_run.py`` runs the daemon as the unit
says and ``test_service_install.py`` installs it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from summaryd.daemon.loop import SHUTDOWN_LIMIT
from summaryd.daemon.service import PLACEHOLDER_PYTHON, UNIT_NAME, render_unit

from ..conftest import REPO
from .service_helpers import command, setting, unit_environment

pytestmark = pytest.mark.integration

LOCATION_VARIABLES = {
    "SUMMARYD_RUNTIME_DIR",
    "XDG_RUNTIME_DIR",
    "SUMMARYD_RING_PREFIX",
    "SUMMARYD_SHM_DIR",
}


# -- the unit's text -------------------------------------------------------------


def test_checked_in_unit_is_the_rendered_one() -> None:
    checked_in = (REPO / "systemd" / UNIT_NAME).read_text()
    assert checked_in == render_unit(PLACEHOLDER_PYTHON, {}), (
        "systemd/summaryd.service differs from daemon/service.py; regenerate it with\n"
        "  python -c 'from summaryd.daemon.service import render_unit as r; "
        'print(r("/usr/bin/python3"), end="")\' > systemd/summaryd.service'
    )


def test_unit_settings() -> None:
    text = render_unit(sys.executable, {})
    assert setting(text, "Service", "Type") == "notify"
    assert setting(text, "Service", "NotifyAccess") == "main"
    assert setting(text, "Service", "WatchdogSec") == "30"
    assert setting(text, "Service", "Restart") == "on-failure"
    assert setting(text, "Service", "KillMode") == "mixed"
    assert setting(text, "Service", "PrivateTmp") == "no"
    assert setting(text, "Service", "RestrictAddressFamilies") == "AF_UNIX"
    assert setting(text, "Install", "WantedBy") == "default.target"
    # SIGKILL must not cut the daemon's drain (capped at SHUTDOWN_LIMIT) nor the fsyncs after.
    assert float(setting(text, "Service", "TimeoutStopSec")) >= SHUTDOWN_LIMIT + 15
    assert int(setting(text, "Unit", "StartLimitBurst")) > 1
    prefix, argv = command(setting(text, "Service", "ExecStart"))
    assert (prefix, argv) == (
        "",
        [sys.executable, "-m", "summaryd.daemon", "serve", "--foreground"],
    )
    env = unit_environment(text)
    assert env["SUMMARYD_IDLE_EXIT"] == "0" and env["PYTHONUNBUFFERED"] == "1"
    # Clients find the daemon through their own environment: the unit moves nothing.
    assert not LOCATION_VARIABLES & set(env)


def test_render_unit_quotes_what_systemd_would_expand() -> None:
    python = "/opt/my envs/a$HOME/py%n"
    extra = {"FOO": 'a b%c$d"e\\f', "SUMMARYD_MAX_LATENCY": "0.5"}
    text = render_unit(python, extra)
    for key in ("ExecStartPre", "ExecStart"):
        prefix, argv = command(setting(text, "Service", key))
        assert argv[0] == python
        assert ":" in prefix  # "$" in the path: no variable expansion on this line
    assert unit_environment(text) | extra == unit_environment(text)
    with pytest.raises(ValueError, match="absolute"):
        render_unit("python3", {})
    for bad in ('/opt/a"b/python', "/opt/a\\b/python", "/opt/a'b/python", "/opt/a\tb/python"):
        with pytest.raises(ValueError, match="quote, a backslash or a control"):
            render_unit(bad, {})
    with pytest.raises(ValueError, match="control character"):
        render_unit(sys.executable, {"A": "x\ny"})
    with pytest.raises(ValueError, match="not a valid"):
        render_unit(sys.executable, {"A B": "x"})


def systemd_analyze() -> str:
    exe = shutil.which("systemd-analyze")
    if exe is None:
        msg = (
            "systemd-analyze is not installed: apt-get install --no-install-recommends systemd "
            "(.ci/run does)"
        )
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return exe


def verify(unit: Path, tmp_path: Path) -> list[str]:
    """``systemd-analyze --user verify``: its complaints about ``unit``."""
    xdg = tmp_path / "xdg"
    xdg.mkdir(mode=0o700, exist_ok=True)
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {"PATH": os.environ.get("PATH", os.defpath), "XDG_RUNTIME_DIR": str(xdg)}
    r = subprocess.run(
        [systemd_analyze(), "--user", "verify", str(unit)],
        env=env | {"HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    complaints = [line for line in (r.stdout + r.stderr).splitlines() if UNIT_NAME in line]
    if r.returncode != 0 and not complaints:
        complaints = [f"exit status {r.returncode}: {r.stdout}{r.stderr}"]
    return complaints


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    unit = tmp_path / UNIT_NAME
    unit.write_text(render_unit(sys.executable, {"SUMMARYD_LOG_LEVEL": "debug"}))
    assert verify(unit, tmp_path) == []

    # Quoting: systemd finds an interpreter whose path holds a space, "%" and "$".
    odd = tmp_path / "my envs$X" / "py%1"
    odd.parent.mkdir()
    odd.symlink_to(sys.executable)
    unit.write_text(render_unit(str(odd), {"A": 'x y%z$"\\'}))
    assert verify(unit, tmp_path) == []

    # ... and it does complain, about a bad setting or a missing interpreter.
    text = render_unit(str(tmp_path / "no-such-python"), {})
    unit.write_text(text.replace("WatchdogSec=30", "WatchdogSec=soon"))
    complaints = "\n".join(verify(unit, tmp_path))
    assert "no-such-python" in complaints and "soon" in complaints
