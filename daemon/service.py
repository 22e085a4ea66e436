"""The systemd user unit: render it, install it, remove it.

``summaryd install-service`` writes ``summaryd.service`` into the user's unit
directory (``$XDG_CONFIG_HOME/systemd/user``, else ``~/.config/systemd/user``)
with the interpreter that runs this command, then asks the user manager to
reload and enable it. ``summaryd uninstall-service`` stops, disables and
removes it. ``systemd/summaryd.service`` in the repository is
``render_unit(PLACEHOLDER_PYTHON, {})`` (a test checks that); the text lives
here because an installed wheel does not ship the repository's ``systemd/``.

The daemon under systemd is found by clients exactly as a spawned one is: the
unit sets nothing that moves the runtime directory, the ring prefix or the shm
directory, so both derive them from ``$XDG_RUNTIME_DIR`` and friends.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TextIO

from summaryd.paths import locations

UNIT_NAME = "summaryd.service"
PLACEHOLDER_PYTHON = "/usr/bin/python3"

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
# The unit file is written but nothing is enabled: no `systemctl`, or no user manager answered.
EXIT_NO_MANAGER = 4

# Settings that decide where clients look for the daemon and its rings. Clients read them
# from their own environment; set only in the unit they would hide the daemon from them.
LOCATION_VARIABLES = (
    "SUMMARYD_RUNTIME_DIR",
    "XDG_RUNTIME_DIR",
    "SUMMARYD_RING_PREFIX",
    "SUMMARYD_SHM_DIR",
)
# The unit sets this to 0 itself: a service does not exit when idle.
FIXED_VARIABLES = ("SUMMARYD_IDLE_EXIT",)

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_PLAIN_WORD = re.compile(r"[A-Za-z0-9_@%+=:,./-]+\Z")

# systemctl waits for the job: starting may first stop another daemon (its drain is capped
# at 30 s) and stopping drains this one, so these are longer than the unit's own timeouts.
_START_TIMEOUT = 180.0
_STOP_TIMEOUT = 120.0
_QUERY_TIMEOUT = 15.0

_TEMPLATE = """\
# summaryd as a systemd user service: one daemon per user that writes the
# TensorBoard event files of every process logging through
# `from summaryd import SummaryWriter`.
#
# Install with `summaryd install-service --now` (writes this file to
# ~/.config/systemd/user/ with the interpreter that runs summaryd, reloads the
# user manager, enables and starts the unit); remove with
# `summaryd uninstall-service`. The copy in the repository names
# /usr/bin/python3 as a placeholder interpreter. Change settings with
# `systemctl --user edit summaryd` (a drop-in survives re-installation).
#
# Clients find this daemon exactly as they find one they spawn, in
# $XDG_RUNTIME_DIR/summaryd (the user manager sets XDG_RUNTIME_DIR); the unit
# deliberately sets neither SUMMARYD_RUNTIME_DIR nor SUMMARYD_RING_PREFIX.

[Unit]
Description=summaryd daemon (TensorBoard event files for summaryd.SummaryWriter)
# Stop restarting after 5 failed starts within 60 s rather than spin every
# RestartSec; `systemctl --user reset-failed summaryd` clears the count.
StartLimitIntervalSec=60
StartLimitBurst=5

[Service]
# The daemon sends READY=1 once its control socket is bound and orphaned rings
# are adopted, so `systemctl --user start` returns when clients can connect.
Type=notify
# Only the daemon process itself may send READY/STOPPING/WATCHDOG.
NotifyAccess=main
# A daemon already running for this user (spawned by a trainer before the
# service started) holds the lock and would make ExecStart fail: stop it first,
# gracefully (it drains its rings; this daemon adopts what is left). "-": exit
# 3, nothing running, is not an error.
ExecStartPre=-@PYTHON@ -m summaryd.daemon stop --timeout 60
# The interpreter that ran `summaryd install-service` (a venv's python keeps its
# venv). --foreground: stay attached and log plain lines to stderr (journald
# adds time stamps); never exits when idle.
ExecStart=@PYTHON@ -m summaryd.daemon serve --foreground
# The default working directory of a user service is $HOME, and `python -m`
# puts the working directory first on sys.path: a ~/random.py or ~/zmq.py would
# shadow the real module. Nothing the daemon opens is relative.
WorkingDirectory=/
# Log lines reach the journal as they are written.
Environment=PYTHONUNBUFFERED=1
# Never idle-exit, even if the user manager's environment has
# SUMMARYD_IDLE_EXIT (a clean exit would not be restarted).
Environment=SUMMARYD_IDLE_EXIT=0
@EXTRA_ENV@\
# Name journal lines "summaryd" rather than after the interpreter binary.
SyslogIdentifier=summaryd
# A daemon whose loop stops turning is killed (SIGABRT) and restarted; the
# loop sends WATCHDOG=1 every half of this (15 s).
WatchdogSec=30
# Restart after a crash, a non-zero exit or a watchdog timeout, not after
# `systemctl --user stop` or `summaryd stop`.
Restart=on-failure
RestartSec=1
# Starting may first wait for another daemon to stop (ExecStartPre, up to 60 s).
TimeoutStartSec=90
# SIGTERM makes the daemon drain every ring (capped at 30 s), then write,
# fsync and close every file: give it twice the drain limit before SIGKILL.
TimeoutStopSec=60
# SIGTERM to the daemon alone, which shuts down in order; SIGKILL to anything
# left in the unit's cgroup once it has exited or the timeout passed.
KillMode=mixed

# Hardening. A user service can use what needs no privileges: prctl() and
# seccomp filters. Namespace options (ProtectSystem=, ProtectHome=,
# PrivateTmp=yes, PrivateDevices=, ...) need PrivateUsers= in a user unit,
# hence unprivileged user namespaces, which some distributions disable or
# restrict (the unit would then fail with status 226/NAMESPACE), and they add
# little for an unprivileged user, who cannot write /usr or /etc anyway.
# ProtectSystem= is left out for that reason. The daemon must keep reaching
# /dev/shm (rings), $XDG_RUNTIME_DIR (control socket) and every log
# directory a trainer names, in $HOME, /tmp or anywhere else.
#
# No setuid/setgid or file capabilities can raise the daemon's privileges.
NoNewPrivileges=yes
# Rings live in /dev/shm and log directories are often under /tmp: a private
# /tmp would hide event files from TensorBoard and the trainer (the default,
# stated so that nobody "hardens" it).
PrivateTmp=no
# Sockets: only Unix ones (the ZeroMQ ipc:// control socket, sd_notify).
RestrictAddressFamilies=AF_UNIX
# No personality(2) changes (e.g. a different ABI emulation).
LockPersonality=yes
# No realtime scheduling: the daemon must not starve the trainers.
RestrictRealtime=yes
# No setuid/setgid bits on files the daemon creates.
RestrictSUIDSGID=yes
# No new namespaces: the daemon creates none.
RestrictNamespaces=yes
# Only the native system call ABI, so the filters above cannot be bypassed.
SystemCallArchitectures=native
# No writable and executable memory: CPython, numpy, protobuf and ZeroMQ
# generate no code at run time.
MemoryDenyWriteExecute=yes

[Install]
# Start with the user manager (at login, or at boot with
# `loginctl enable-linger`).
WantedBy=default.target
"""


def _exec_path(path: str) -> str:
    """``path`` as the executable of a systemd command line (ExecStart=).

    systemd expands ``$VAR`` in the arguments (argv[0] included) but not in the
    path it executes, so "$$" cannot escape a dollar there: a path with "$" gets
    the ":" prefix, which turns expansion off for the whole line instead.
    """
    escaped = path.replace("%", "%%")  # no quotes or backslashes: render_unit refuses them
    if not _PLAIN_WORD.match(escaped):
        escaped = f'"{escaped}"'
    return (":" if "$" in path else "") + escaped


def _environment_line(key: str, value: str) -> str:
    if not _ENV_NAME.match(key):
        raise ValueError(f"{key!r} is not a valid environment variable name")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError(f"the value of {key} contains a control character")
    quoted = value.replace("%", "%%").replace("\\", "\\\\").replace('"', '\\"')
    return f'Environment="{key}={quoted}"\n'


def render_unit(python: str, extra_env: Mapping[str, str] | None = None) -> str:
    """The text of ``summaryd.service`` running the daemon with ``python``.

    Args:
        python: absolute path of the interpreter (``sys.executable``; a venv's
            symlink is kept, not resolved, so the venv stays in effect).
        extra_env: further ``Environment=`` settings, after the unit's own.

    Raises:
        ValueError: ``python`` is not absolute, or a variable name or value
            cannot be written into the unit.
    """
    if not os.path.isabs(python):
        raise ValueError(f"the interpreter path must be absolute, not {python!r}")
    if any(ord(c) < 32 or ord(c) == 127 or c in "\"'\\" for c in python):
        # systemd refuses such an executable ("contains special characters").
        raise ValueError(
            f"systemd cannot run an interpreter whose path holds a quote, a backslash or "
            f"a control character: {python!r}"
        )
    extra = "".join(_environment_line(k, v) for k, v in (extra_env or {}).items())
    if extra:
        extra = "# Added by `summaryd install-service --env`.\n" + extra
    return _TEMPLATE.replace("@PYTHON@", _exec_path(python)).replace("@EXTRA_ENV@", extra)


def parse_env(assignments: Iterable[str]) -> dict[str, str]:
    """``KEY=VALUE`` strings (``--env``) as a dict.

    Raises:
        ValueError: malformed, or a variable the unit must not set.
    """
    out: dict[str, str] = {}
    for a in assignments:
        key, sep, value = a.partition("=")
        if not sep or not _ENV_NAME.match(key):
            raise ValueError(f"--env expects KEY=VALUE, got {a!r}")
        if key in LOCATION_VARIABLES:
            raise ValueError(
                f"--env {key}: clients find the daemon through their own environment; "
                f"set only in the unit it would hide the daemon from them"
            )
        if key in FIXED_VARIABLES:
            raise ValueError(f"--env {key}: the service never exits when idle")
        out[key] = value
    return out


def config_home(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME`` if absolute (the XDG rule), else ``~/.config``."""
    if environ is None:
        environ = os.environ
    xdg = environ.get("XDG_CONFIG_HOME", "")
    if os.path.isabs(xdg):
        return Path(xdg)
    home = environ.get("HOME") or pwd.getpwuid(os.getuid()).pw_dir
    return Path(home) / ".config"


def unit_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where the user manager looks for ``summaryd.service``."""
    return config_home(environ) / "systemd" / "user" / UNIT_NAME


class _Systemctl:
    """``systemctl --user``, printing each command it runs and its output."""

    def __init__(self, exe: str, environ: Mapping[str, str], out: TextIO, err: TextIO) -> None:
        self.exe = exe
        self.environ = dict(environ)
        self.out = out
        self.err = err

    def query(self, *args: str) -> subprocess.CompletedProcess[str] | None:
        """Run quietly; None if it did not finish in time."""
        try:
            return subprocess.run(
                [self.exe, "--user", *args],
                env=self.environ,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=_QUERY_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            return None

    def run(self, *args: str, timeout: float = _QUERY_TIMEOUT) -> bool:
        print(f"$ systemctl --user {' '.join(args)}", file=self.out)
        try:
            r = subprocess.run(
                [self.exe, "--user", *args],
                env=self.environ,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            print(f"summaryd: systemctl did not finish within {timeout:.0f} s", file=self.err)
            return False
        if r.stdout:
            self.out.write(r.stdout)
        if r.stderr:
            (self.out if r.returncode == 0 else self.err).write(r.stderr)
        if r.returncode != 0:
            print(f"summaryd: systemctl exited with {r.returncode}", file=self.err)
        return r.returncode == 0

    def manager_environment(self) -> tuple[dict[str, str] | None, str]:
        """The user manager's environment, or None and why nobody answered.

        ``show-environment`` answers whenever a manager runs; ``is-system-running``
        does not do for this: it exits non-zero for "degraded" (any failed unit) and
        says "offline" inside containers whose init is not systemd.
        """
        r = self.query("show-environment")
        if r is None:
            return None, "systemctl --user did not answer in time"
        if r.returncode != 0:
            why = (r.stderr.strip().splitlines() or [f"exit status {r.returncode}"])[0]
            return None, why
        env: dict[str, str] = {}
        for line in r.stdout.splitlines():
            key, sep, value = line.partition("=")
            if sep and _ENV_NAME.match(key):
                env[key] = value
        return env, ""


def _streams(out: TextIO | None, err: TextIO | None) -> tuple[TextIO, TextIO]:
    return (out or sys.stdout), (err or sys.stderr)


def _manual_steps(now: bool, out: TextIO) -> None:
    print("Once a user manager runs, enable the service with:", file=out)
    print("    systemctl --user daemon-reload", file=out)
    print(f"    systemctl --user enable {'--now ' if now else ''}{UNIT_NAME}", file=out)


def _warn_mismatch(
    manager_env: Mapping[str, str],
    environ: Mapping[str, str],
    written: Path,
    err: TextIO,
) -> None:
    """Warn when the service would serve elsewhere than this shell's clients look,
    or when the manager reads its units from another directory."""
    # The service runs with the manager's environment plus the unit's settings, which
    # add nothing that moves the daemon.
    mine, theirs = locations(environ), locations(manager_env)
    if mine != theirs:
        print(
            "summaryd: warning: processes started from this environment look for the daemon "
            f"in {mine.runtime_dir} (rings {mine.shm_dir}/{mine.ring_prefix}.*), but the "
            f"service will serve {theirs.runtime_dir} (rings "
            f"{theirs.shm_dir}/{theirs.ring_prefix}.*); they would start their own daemon. "
            "Align XDG_RUNTIME_DIR / SUMMARYD_RUNTIME_DIR / SUMMARYD_RING_PREFIX / "
            "SUMMARYD_SHM_DIR between this shell and the user manager "
            "(`systemctl --user show-environment`).",
            file=err,
        )
    if "HOME" in manager_env:
        expected = unit_path(manager_env)
        if expected != written:
            print(
                f"summaryd: warning: the unit was written to {written}, but the user manager "
                f"reads {expected.parent} (XDG_CONFIG_HOME or HOME differ from this shell's).",
                file=err,
            )


def install(
    now: bool,
    *,
    extra_env: Mapping[str, str] | None = None,
    python: str | None = None,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Write the unit, reload the user manager, enable the unit (and start it if ``now``).

    Without ``systemctl`` or a user manager that answers, the file is still
    written and the commands to run later are printed.

    Returns:
        ``EXIT_OK``; ``EXIT_NO_MANAGER`` (file written, nothing enabled);
        ``EXIT_USAGE`` (bad interpreter or environment); ``EXIT_FAILED``.
    """
    out, err = _streams(out, err)
    if environ is None:
        environ = os.environ
    python = python or sys.executable
    if not python or not os.path.isabs(python) or not os.access(python, os.X_OK):
        print(f"summaryd: {python!r} is not an absolute path to an executable", file=err)
        return EXIT_USAGE
    try:
        text = render_unit(python, extra_env)
    except ValueError as exc:
        print(f"summaryd: {exc}", file=err)
        return EXIT_USAGE
    path = unit_path(environ)
    try:
        old = path.read_text() if path.exists() else None
        if old != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{UNIT_NAME}.{os.getpid()}.tmp")
            tmp.write_text(text)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
    except OSError as exc:
        print(f"summaryd: cannot write {path}: {exc}", file=err)
        return EXIT_FAILED
    state = "wrote" if old is None else "unchanged" if old == text else "replaced"
    print(f"summaryd: {state} {path} (python {python})", file=out)

    exe = shutil.which("systemctl", path=environ.get("PATH", os.defpath))
    if exe is None:
        print("summaryd: systemctl is not on PATH; nothing enabled.", file=err)
        _manual_steps(now, out)
        return EXIT_NO_MANAGER
    systemctl = _Systemctl(exe, environ, out, err)
    manager_env, why = systemctl.manager_environment()
    if manager_env is None:
        print(f"summaryd: no systemd user manager answered ({why}); nothing enabled.", file=err)
        _manual_steps(now, out)
        return EXIT_NO_MANAGER
    _warn_mismatch(manager_env, environ, path, err)
    if not systemctl.run("daemon-reload"):
        return EXIT_FAILED
    args = ["enable", "--now", UNIT_NAME] if now else ["enable", UNIT_NAME]
    if not systemctl.run(*args, timeout=_START_TIMEOUT):
        print(
            "summaryd: see `systemctl --user status summaryd` and `journalctl --user -u summaryd`",
            file=err,
        )
        return EXIT_FAILED
    if now:
        print(f"summaryd: {UNIT_NAME} is enabled and running.", file=out)
    else:
        print(
            f"summaryd: {UNIT_NAME} is enabled; it starts with your user manager, "
            f"or now with `systemctl --user start summaryd`.",
            file=out,
        )
    return EXIT_OK


def uninstall(
    *,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Stop and disable the unit (if a user manager answers), remove its file, reload.

    Returns:
        ``EXIT_OK`` (also when nothing was installed) or ``EXIT_FAILED``.
    """
    out, err = _streams(out, err)
    if environ is None:
        environ = os.environ
    path = unit_path(environ)
    wants = path.parent / "default.target.wants" / UNIT_NAME
    if not path.exists() and not wants.is_symlink():
        print(f"summaryd: {UNIT_NAME} is not installed ({path} does not exist)", file=out)
        return EXIT_OK
    status = EXIT_OK
    exe = shutil.which("systemctl", path=environ.get("PATH", os.defpath))
    systemctl = _Systemctl(exe, environ, out, err) if exe else None
    manager_env, why = systemctl.manager_environment() if systemctl else (None, "no systemctl")
    # Stops the daemon (it drains every ring and closes every file) and removes the
    # default.target.wants link; the file is removed after, so the manager still knows it.
    if (
        systemctl is not None
        and manager_env is not None
        and not systemctl.run("disable", "--now", UNIT_NAME, timeout=_STOP_TIMEOUT)
    ):
        status = EXIT_FAILED
    try:
        if wants.is_symlink():  # enabled earlier, disabled by hand or by nobody
            wants.unlink()
        if path.exists():
            path.unlink()
    except OSError as exc:
        print(f"summaryd: cannot remove {path}: {exc}", file=err)
        return EXIT_FAILED
    print(f"summaryd: removed {path}", file=out)
    if systemctl is not None and manager_env is not None:
        if not systemctl.run("daemon-reload"):
            status = EXIT_FAILED
        # Forget a failed state of the now unknown unit; nothing to say if there is none.
        systemctl.query("reset-failed", UNIT_NAME)
    else:
        print(
            f"summaryd: no systemd user manager answered ({why}); nothing was stopped. "
            "A daemon it started keeps running until `summaryd stop`.",
            file=out,
        )
    if status != EXIT_OK:
        print(
            "summaryd: the unit may still be loaded: see `systemctl --user status summaryd`",
            file=err,
        )
    return status
