"""``summaryd``: run, inspect and stop the daemon.

Every option also reads a ``SUMMARYD_*`` environment variable (the table is
in the README); flags win over the environment.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import subprocess
import sys
import time
from typing import Any

from summaryd import __version__, wire
from summaryd.control import request
from summaryd.errors import DaemonUnavailableError
from summaryd.paths import Locations, locations, process_alive

EXIT_NOT_RUNNING = 3  # as `systemctl status` for a unit that is not active
_RING_NAME = re.compile(r"\d+\.[0-9a-f]{16}")  # after "<prefix>.": a ring, not a blob


def _env_float(name: str) -> float | None:
    v = os.environ.get(name)
    return float(v) if v else None


def _ago(t: float | None, now: float) -> str:
    return "never" if t is None else f"{max(0.0, now - t):.1f}s ago"


def format_status(st: dict[str, Any]) -> str:
    """``systemctl status``-like text for a status reply."""
    d = st["daemon"]
    tot = st["totals"]
    now = time.monotonic()
    lines = [
        f"● summaryd {d['version']} - running",
        f"     Main PID: {d['pid']}",
        f"       Uptime: {d['uptime']:.0f}s",
        f"       Socket: {d['socket']}",
        f"    Idle exit: {'never' if d['idle_exit'] is None else str(d['idle_exit']) + 's'}",
        f"       Totals: {tot['records']} records, {tot['bytes']} bytes written, "
        f"{tot['dropped']} dropped, {tot['malformed']} malformed, "
        f"{d['file_errors']} write errors",
        f"         Rate: {tot['records_per_second']:.0f} records/s "
        f"(last {tot['rate_window']:.0f}s)",
        "",
        f"Clients ({len(st['clients'])}):",
        "      PID WRITERS  RING FILL      RING  WRITTEN  DROPPED  LAST ACTIVE  COMMAND",
    ]
    for c in st["clients"]:
        cmd = " ".join(c["argv"])[:60] or "?"
        cap = c.get("ring_capacity", 0)
        fill = c.get("ring_fill", 0) / max(1, cap)
        lines.append(
            f"  {c['pid']:>7} {c['writers']:>7} {fill:>10.1%} {cap >> 20:>6} MiB "
            f"{c['records']:>8} {c.get('dropped', 0):>8} {_ago(c['last_activity'], now):>12}  {cmd}"
        )
    lines.append("")
    lines.append(f"Runs ({len(st['runs'])}):")
    for r in st["runs"]:
        suffix = " [" + r["suffix"] + "]" if r["suffix"] else ""
        state = " (closing)" if r.get("idle_since") is not None else ""
        lines.append(f"  {r['log_dir']}{suffix}{state}")
        lines.append(
            f"      {r['records']} records, {r['bytes']} bytes, {r['writers']} writer(s), "
            f"last write (= flushed to the OS) {_ago(r['last_write'], now)}"
        )
        s3 = r.get("s3")
        if s3 is not None:
            lines.append(
                f"      spool {s3['spool']}: {s3['backlog_bytes']} bytes in "
                f"{s3['backlog_segments']} segment(s) not yet uploaded, "
                f"{s3['uploaded_segments']} uploaded, {s3['overflowed_records']} dropped "
                f"(spool full)"
            )
            if s3.get("last_error"):
                lines.append(f"      UPLOAD ERROR {s3['last_error']}")
        else:
            lines.append(f"      file {r['file']}")
        if r.get("error"):
            lines.append(f"      ERROR {r['error']}: events wait in shared memory")
    live = {r["s3"]["spool"] for r in st["runs"] if r.get("s3")}
    left = [s for s in d.get("spools", ()) if s["spool"] not in live]
    if left:
        lines.append("")
        lines.append(f"Spools of ended runs ({len(left)}):")
        for s3 in left:
            err = f"; UPLOAD ERROR {s3['last_error']}" if s3.get("last_error") else ""
            lines.append(f"  {s3['url']}: {s3['backlog_bytes']} bytes to upload{err}")
    return "\n".join(lines)


def waiting_rings(loc: Locations) -> list[dict[str, Any]]:
    """Rings in the ring dir that the next daemon of ``loc`` adopts and writes:
    those that report to its runtime dir, and those whose process exited (a
    trainer killed while no daemon ran).  A live client of another daemon
    sharing the prefix is not listed."""
    from summaryd.ring import RingCorruptError, ring_owner, runtime_id

    try:
        ours = runtime_id(loc.runtime_dir)
    except OSError:
        ours = -1  # no runtime dir yet: no ring can name it
    try:
        names = sorted(os.listdir(loc.shm_dir))
    except OSError:
        return []
    out = []
    for name in names:
        if not _RING_NAME.fullmatch(name[len(loc.ring_prefix) + 1 :]):
            continue
        if not loc.is_ring_name(name):
            continue
        path = loc.ring_path(name)
        try:
            pid, start, runtime = ring_owner(path)
            alive = process_alive(pid, start)
            size = os.path.getsize(path)
        except (OSError, RingCorruptError):
            continue
        if alive and runtime != ours:
            continue
        out.append({"name": name, "pid": pid, "alive": alive, "bytes": size})
    return out


def cmd_status(args: argparse.Namespace) -> int:
    loc = locations()
    try:
        st = request(loc, wire.status())
    except DaemonUnavailableError as exc:
        rings = waiting_rings(loc)
        if args.json:
            print(json.dumps({"running": False, "runtime_dir": loc.runtime_dir, "rings": rings}))
        else:
            print(f"○ summaryd - not running ({exc})")
            if rings:
                dead = sum(not r["alive"] for r in rings)
                print(
                    f"  {len(rings)} ring(s) wait in {loc.shm_dir} ({dead} of exited processes); "
                    f"the next daemon writes their records (`summaryd serve`, or any "
                    f"summaryd client starts one)"
                )
        return EXIT_NOT_RUNNING
    if args.json:
        st.pop("t", None)
        st["running"] = True
        print(json.dumps(st, indent=2))
    else:
        print(format_status(st))
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    from summaryd.paths import process_alive, process_start_ticks

    loc = locations()
    try:
        # The daemon asked, by pid and start time: a client may start the next
        # one right after it exits (heartbeat), and that one is not ours to wait for.
        pid = int(request(loc, wire.status())["daemon"]["pid"])
        start = process_start_ticks(pid)
        request(loc, wire.stop())
    except DaemonUnavailableError as exc:
        print(f"summaryd: {exc}", file=sys.stderr)
        return EXIT_NOT_RUNNING
    deadline = time.monotonic() + args.timeout
    while start is not None and process_alive(pid, start):
        if time.monotonic() > deadline:
            print(f"summaryd: the daemon (pid {pid}) did not stop in time", file=sys.stderr)
            return 1
        time.sleep(0.05)  # its exit is not an event this process can wait on
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from .core import DEFAULT_MAX_LATENCY
    from .loop import AlreadyRunning, Daemon

    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(levelname)s %(message)s"
        if args.foreground
        else "%(asctime)s %(process)d %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    loc = locations()
    if not args.foreground and not args.spawned:
        # Detach: re-run in the foreground in a new session, return once it answers.
        cmd = [
            sys.executable,
            "-m",
            "summaryd.daemon",
            "serve",
            "--foreground",
            "--log-level",
            args.log_level,
        ]
        if args.idle_exit is not None:
            cmd += ["--idle-exit", str(args.idle_exit)]
        if args.encoders is not None:
            cmd += ["--encoders", str(args.encoders)]
        from summaryd.paths import ensure_runtime_dir
        from summaryd.spawn import daemon_environment

        ensure_runtime_dir(loc.runtime_dir)
        with open(loc.log_path, "ab") as logf:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=logf,
                start_new_session=True,
                env=daemon_environment(),
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                print(
                    f"summaryd: the daemon exited ({proc.returncode}); see {loc.log_path}",
                    file=sys.stderr,
                )
                return 1
            try:
                st = request(loc, wire.status(), timeout=0.5)
                print(f"summaryd running, pid {st['daemon']['pid']}, socket {loc.socket_path}")
                return 0
            except DaemonUnavailableError:
                time.sleep(0.05)
        print("summaryd: the daemon did not come up in time", file=sys.stderr)
        return 1
    idle = args.idle_exit
    if idle is None:
        idle = _env_float("SUMMARYD_IDLE_EXIT")
    if idle is None and args.spawned:
        idle = 60.0  # a daemon nobody asked for goes away when nobody uses it
    if idle is not None and idle <= 0:
        idle = None
    latency = args.max_latency
    if latency is None:
        latency = _env_float("SUMMARYD_MAX_LATENCY")
    if latency is None:
        latency = DEFAULT_MAX_LATENCY
    latency = max(0.0, latency)  # 0: every event is written the moment it is drained
    encoders = args.encoders
    if encoders is None and os.environ.get("SUMMARYD_ENCODERS"):
        encoders = int(os.environ["SUMMARYD_ENCODERS"])
    daemon = Daemon(
        loc, idle_exit=idle, max_latency=latency, lock_fd=args.lock_fd, encoders=encoders
    )
    try:
        return daemon.serve()
    except AlreadyRunning:
        if args.spawned:
            return 0
        print(f"summaryd: a daemon already runs for {loc.runtime_dir}", file=sys.stderr)
        return 1


def cmd_install_service(args: argparse.Namespace) -> int:
    from . import service

    try:
        extra_env = service.parse_env(args.env)
        if args.print_unit:
            sys.stdout.write(service.render_unit(sys.executable, extra_env))
            return 0
    except ValueError as exc:
        print(f"summaryd: {exc}", file=sys.stderr)
        return service.EXIT_USAGE
    return service.install(args.now, extra_env=extra_env)


def cmd_uninstall_service(args: argparse.Namespace) -> int:
    from . import service

    return service.uninstall()


def cmd_run(args: argparse.Namespace) -> int:
    """Run a command with ``SUMMARYD_PATCH=1``: every Python process it starts
    (ranks, DataLoader workers, spawned children) logs through summaryd."""
    from summaryd.patching import ENV, startup_hook_path

    cmd = list(args.cmd)
    if cmd[:1] == ["--"]:
        cmd = cmd[1:]
    if not cmd:
        print(
            "summaryd run: expected a command, e.g. summaryd run -- python train.py",
            file=sys.stderr,
        )
        return 2
    hook = startup_hook_path()
    if hook is None:
        print(
            "summaryd run: warning: the startup hook summaryd-patch.pth is not installed "
            f"for {sys.executable}; reinstall summaryd (pip install summaryd) or call "
            "summaryd.patch() in the script",
            file=sys.stderr,
        )
    env = dict(os.environ)
    env[ENV] = "1"
    try:
        os.execvpe(cmd[0], cmd, env)
    except OSError as exc:
        print(f"summaryd run: cannot run {cmd[0]!r}: {exc.strerror}", file=sys.stderr)
        return 127 if isinstance(exc, FileNotFoundError) else 126


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="summaryd",
        description="The summaryd daemon: writes TensorBoard event files for every "
        "process that logs through `from summaryd import SummaryWriter`.",
    )
    p.add_argument("--version", action="version", version=f"summaryd {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser(
        "serve",
        help="run the daemon",
        description="Run the daemon. Without --foreground it detaches and "
        "returns once the daemon answers.",
    )
    s.add_argument(
        "--foreground",
        action="store_true",
        help="stay attached to the terminal (systemd, debugging); never idle-exits "
        "unless --idle-exit is given",
    )
    s.add_argument(
        "--idle-exit",
        type=float,
        default=None,
        metavar="SECS",
        help="exit after SECS with no clients (env SUMMARYD_IDLE_EXIT; 0 = never)",
    )
    s.add_argument(
        "--max-latency",
        type=float,
        default=None,
        metavar="SECS",
        help="longest an event waits before it is written (env SUMMARYD_MAX_LATENCY, default 1)",
    )
    s.add_argument(
        "--encoders",
        type=int,
        default=None,
        metavar="N",
        help="encoder processes for images, histograms, audio, video (env SUMMARYD_ENCODERS; "
        "default min(4, CPUs), 1 CPU: 0; 0 = encode in the daemon)",
    )
    s.add_argument(
        "--log-level",
        default=os.environ.get("SUMMARYD_LOG_LEVEL", "info"),
        choices=["debug", "info", "warning", "error"],
        help="log level (env SUMMARYD_LOG_LEVEL, default info)",
    )
    s.add_argument("--spawned", action="store_true", help=argparse.SUPPRESS)
    s.add_argument("--lock-fd", type=int, default=None, help=argparse.SUPPRESS)
    s.set_defaults(func=cmd_serve)

    st = sub.add_parser("status", help="show the daemon, its clients and runs (exit 3: none)")
    st.add_argument("--json", action="store_true", help="machine-readable output")
    st.set_defaults(func=cmd_status)

    sp = sub.add_parser("stop", help="drain every ring, write and close every file, exit")
    sp.add_argument("--timeout", type=float, default=60.0, help="seconds to wait (default 60)")
    sp.set_defaults(func=cmd_stop)

    si = sub.add_parser(
        "install-service",
        help="install the systemd user unit and enable it (exit 4: no user manager)",
        description="Write summaryd.service to $XDG_CONFIG_HOME/systemd/user (default "
        "~/.config/systemd/user) running this Python, then `systemctl --user daemon-reload` "
        "and `systemctl --user enable [--now] summaryd.service`. Without systemctl or a "
        "user manager the file is written, the commands are printed and the exit status "
        "is 4; 1 means a step failed.",
    )
    si.add_argument("--now", action="store_true", help="also start it (enable --now)")
    si.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="add an Environment= setting to the unit, e.g. SUMMARYD_MAX_LATENCY=0.5 "
        "(repeatable; not the variables that locate the daemon)",
    )
    si.add_argument(
        "--print",
        dest="print_unit",
        action="store_true",
        help="print the unit instead of installing it",
    )
    si.set_defaults(func=cmd_install_service)

    su = sub.add_parser(
        "uninstall-service",
        help="stop, disable and remove the systemd user unit",
        description="`systemctl --user disable --now summaryd.service` (the daemon drains "
        "and exits), remove the unit file, `systemctl --user daemon-reload`. Exit 0 also "
        "when nothing was installed; 1 when a step failed.",
    )
    su.set_defaults(func=cmd_uninstall_service)

    sr = sub.add_parser(
        "run",
        help="run a command whose every Python process logs through summaryd",
        description="Run CMD with SUMMARYD_PATCH=1 in its environment: in each Python "
        "process it starts (torchrun ranks, DataLoader workers, spawned children), "
        "torch's and tensorboardX's SummaryWriter are summaryd's. "
        "Example: summaryd run -- torchrun --nproc-per-node 2 train.py",
    )
    sr.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD [ARGS ...]")
    sr.set_defaults(func=cmd_run)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
