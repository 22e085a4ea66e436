#!/usr/bin/env python
"""Soak run (issue 12, part 3): a mixed workload under random kills, stops, a full
disk and resumes; at the end every run is read back by TensorBoard four ways and
every event a trainer reported as logged must be there exactly once.

Not a test (pytest does not collect it).

    python benchmarks/soak.py --minutes 30            # the full soak
    python benchmarks/soak.py --minutes 2 --seed 7    # a smoke run

Workload: ``--trainers`` processes of ``tests/peers/soak_trainer.py`` (scalars and
text every step, every media kind every 10 steps, a blob every 25, forked workers
every 100, a spawned child every 250), each in its own run on a small tmpfs this
script mounts.  Each reports every event after its ``add_*`` returned in a journal.

Events, one every ``--gap`` seconds (the first five are one of each kind):

* trainer kill: SIGKILL of a trainer's process group (its forked and spawned
  children too), then a new life resumes from its last checkpoint with purge_step;
* daemon kill: SIGKILL of the serving daemon; the clients start a new one
  (heartbeat), timed until it answers ``status``;
* stop: ``summaryd stop`` then ``summaryd serve`` after 0-2 s (racing the clients'
  own spawns);
* disk full: the tmpfs is filled to the last byte for 3-10 s, then emptied;
* resume: a trainer is told to stop (``close()``), then resumes with purge_step.

Verdict: every event file is read to its end with TensorBoard's record reader (a
DataLossError = damaged); every run with the legacy ``EventAccumulator``, with the
plugin multiplexer through ``MultiplexerDataProvider``, and through two real
``tensorboard`` servers (``--load_fast=true`` and ``false``, all samples kept).
Each must hold every reported event once, after purges (earlier lives' steps >=
a later life's purge_step are expected gone, and must be).  No ring or blob with
the soak's prefix may be left in /dev/shm.  Exit 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_self_healing import isolated, pct  # noqa: E402

from tests.conftest import DaemonEnv  # noqa: E402
from tests.integration.test_self_healing import daemon_pid, serving_lines  # noqa: E402

TRAINER = REPO / "tests" / "peers" / "soak_trainer.py"
KINDS = ("trainer_kill", "daemon_kill", "stop", "disk_full", "resume")
WEIGHTS = (4, 3, 2, 2, 2)
Key = tuple[str, str, int]  # (run, tag, step)


def progress(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- trainers ---------------------------------------------------------------------------


class Trainer:
    """One trainer's successive lives, each a process group of its own."""

    def __init__(self, i: int, tmp: Path, logs: Path, env: dict[str, str], rate: float) -> None:
        self.i = i
        self.dir = tmp / f"trainer{i}"
        self.dir.mkdir()
        self.log_dir = logs / f"t{i}"
        self.env = env | {
            "PEER_LOG_DIR": str(self.log_dir),
            "PEER_DIR": str(self.dir),
            "PEER_RATE": str(rate),
        }
        self.life = -1
        self.proc: subprocess.Popen[bytes] | None = None
        self.failures: list[str] = []

    def start(self) -> None:
        self.life += 1
        with open(self.dir / f"life{self.life}.out", "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, str(TRAINER)],
                env=self.env | {"PEER_LIFE": str(self.life)},
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: workers die with it
                cwd=self.dir,
            )

    def check(self) -> None:
        """A life that ended by itself is a failure: note it and start the next one."""
        if self.proc is not None and self.proc.poll() is not None:
            self.failures.append(
                f"t{self.i} life {self.life} exited with {self.proc.returncode}: "
                + (self.dir / f"life{self.life}.out").read_text(errors="replace")[-1500:]
            )
            progress(f"trainer t{self.i} died by itself (rc {self.proc.returncode})")
            self.start()

    def kill(self) -> None:
        """SIGKILL the life's whole process group (its leader is alive: the group is ours)."""
        p = self.proc
        if p is None:
            return
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        assert p.stdin is not None
        with contextlib.suppress(OSError):
            p.stdin.close()
        self.proc = None

    def stop(self, timeout: float = 300.0) -> None:
        """Tell the life to stop: it closes its writer (everything written) and exits 0."""
        p = self.proc
        if p is None:
            return
        assert p.stdin is not None
        try:
            p.stdin.write(b"stop\n")
            p.stdin.close()
            code = p.wait(timeout)
        except (OSError, subprocess.TimeoutExpired):
            code = None
        if code != 0:
            self.failures.append(f"t{self.i} life {self.life}: stop gave {code}")
            self.kill()
        self.proc = None


# -- the disk ---------------------------------------------------------------------------


class SmallDisk:
    """A tmpfs mounted for the soak (root only), unmounted in ``close`` whatever happens."""

    def __init__(self, path: Path, mib: int) -> None:
        self.path = path
        path.mkdir()
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={mib}m,mode=0755", "tmpfs", str(path)],
            check=True,
        )
        self.mounted = True
        self.filler = path / "filler"

    def fill(self) -> int:
        """Write a filler file until ENOSPC; its size."""
        size = 0
        with open(self.filler, "wb", buffering=0) as f:
            for chunk in (1 << 20, 4096, 1):
                block = b"\0" * chunk
                while True:
                    try:
                        n = f.write(block)
                    except OSError as e:
                        if e.errno != errno.ENOSPC:
                            raise
                        break
                    size += n or 0
        return size

    def empty(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.filler.unlink()

    def close(self) -> None:
        if self.mounted:
            self.empty()
            r = subprocess.run(["umount", str(self.path)], capture_output=True)
            if r.returncode != 0:  # something still has a file open there
                subprocess.run(["umount", "-l", str(self.path)], check=False)
            self.mounted = False


# -- the daemon -------------------------------------------------------------------------


def summaryd(d: DaemonEnv, *args: str, timeout: float = 120.0) -> int:
    return subprocess.run(
        [sys.executable, "-m", "summaryd.daemon", *args],
        env=d.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=timeout,
    ).returncode


def daemon_process(d: DaemonEnv) -> Any:
    """The daemon named by the pid file, if it is alive and is a summaryd daemon."""
    import psutil

    pid = d.pid
    if pid is None:
        return None
    try:
        p = psutil.Process(pid)
        return p if "summaryd.daemon" in " ".join(p.cmdline()) else None
    except psutil.Error:
        return None


def wait_serving(d: DaemonEnv, other_than: int | None, limit: float = 60.0) -> float | None:
    """Seconds until a daemon other than ``other_than`` answers status (None: not in time)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        pid = daemon_pid(d)
        if pid is not None and pid != other_than:
            return time.monotonic() - t0
        time.sleep(0.02)  # polling: a daemon another process starts sends us no event
    return None


def stop_daemon(d: DaemonEnv, timeout: float = 120.0) -> None:
    """SIGTERM the serving daemon by PID (it drains every ring) and wait until it is gone."""
    p = daemon_process(d)
    if p is None:
        return
    p.terminate()
    try:
        p.wait(timeout)
    except Exception:  # psutil.TimeoutExpired
        p.kill()
        p.wait(10)


# -- the soak ---------------------------------------------------------------------------


class Soak:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.tmp = tmp
        self.disk = SmallDisk(tmp / "logs", args.tmpfs_mib)
        self.d = isolated(tmp, spawn=True)
        self.d.runtime_dir.mkdir(mode=0o700)
        self.d.env = self.d.env | {
            "SUMMARYD_RING_PREFIX": "sdsoak-" + self.d.ring_prefix.split("-", 1)[1],
            "SUMMARYD_RING_BYTES": str(1 << 20),  # a quarter: 256 KiB, the big histogram is a blob
            "SUMMARYD_FULL_WAIT": "600",  # a full disk fills rings: wait, never drop
            "SUMMARYD_FLUSH_TIMEOUT": "600",
            "SUMMARYD_LOG_LEVEL": "info",
        }
        self.d.ring_prefix = self.d.env["SUMMARYD_RING_PREFIX"]
        self.trainers = [
            Trainer(i, tmp, self.disk.path, self.d.env, args.rate) for i in range(args.trainers)
        ]
        self.counts: Counter[str] = Counter()
        self.gaps: list[float] = []
        self.problems: list[str] = []
        self.events_log = tmp / "events.log"

    def note(self, msg: str) -> None:
        progress(msg)
        with open(self.events_log, "a") as f:
            f.write(f"{time.time():.3f} {msg}\n")

    # The five events --------------------------------------------------------------

    def trainer_kill(self) -> None:
        t = self.rng.choice(self.trainers)
        t.kill()
        self.note(f"SIGKILL trainer t{t.i} life {t.life}; resuming")
        t.start()
        self.counts["trainer kills"] += 1
        self.counts["resumes"] += 1

    def daemon_kill(self) -> None:
        p = daemon_process(self.d)
        if p is None:
            self.note("daemon kill skipped: no daemon serving")
            return
        t0 = time.monotonic()
        p.kill()
        served = wait_serving(self.d, p.pid)
        gap = None if served is None else time.monotonic() - t0
        self.note(f"SIGKILL daemon {p.pid}; a new one serves after {gap}")
        if gap is None:
            self.problems.append(f"no daemon served within 60 s of killing {p.pid}")
        else:
            self.gaps.append(gap)
        self.counts["daemon kills"] += 1

    def stop(self) -> None:
        code = summaryd(self.d, "stop")
        pause = self.rng.uniform(0.0, 2.0)
        time.sleep(pause)  # the pause is the point: clients may start one first
        code2 = summaryd(self.d, "serve")
        self.note(f"summaryd stop (rc {code}), serve after {pause:.1f} s (rc {code2})")
        if code != 0:
            self.problems.append(f"summaryd stop exited {code}")
        self.counts["stops"] += 1

    def disk_full(self) -> None:
        size = self.disk.fill()
        hold = self.rng.uniform(3.0, 10.0)
        self.note(f"disk full ({size >> 10} KiB filler) for {hold:.1f} s")
        time.sleep(hold)  # the episode's length
        self.disk.empty()
        self.counts["disk-full episodes"] += 1

    def resume(self) -> None:
        t = self.rng.choice(self.trainers)
        t.stop()
        self.note(f"trainer t{t.i} life {t.life} stopped; resuming")
        t.start()
        self.counts["resumes"] += 1

    # Run ----------------------------------------------------------------------------

    def run(self) -> None:
        for t in self.trainers:
            t.start()
        end = time.monotonic() + self.args.minutes * 60
        first = list(KINDS)
        self.rng.shuffle(first)
        while True:
            wait = self.rng.uniform(*self.args.gap)
            if time.monotonic() + wait > end:
                break
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
                for t in self.trainers:
                    t.check()
            kind = first.pop(0) if first else self.rng.choices(KINDS, WEIGHTS)[0]
            getattr(self, kind)()
        while time.monotonic() < end:
            time.sleep(0.5)
        self.note("the soak's time is up: stopping every trainer")
        for t in self.trainers:
            t.check()
        for t in self.trainers:
            t.stop()
        self.note("stopping the daemon (SIGTERM: it drains every ring)")
        stop_daemon(self.d)
        time.sleep(0.5)

    def cleanup(self, keep_logs: bool) -> None:
        for t in self.trainers:
            t.kill()
        with contextlib.suppress(Exception):
            stop_daemon(self.d, 30)
        if keep_logs and self.disk.mounted:
            self.disk.empty()
            shutil.copytree(self.disk.path, self.tmp / "logs-kept", dirs_exist_ok=True)
        self.disk.close()
        for name in self.d.rings():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join("/dev/shm", name))


# -- what was logged --------------------------------------------------------------------


def base_tag(tag: str) -> str:
    """A reader's tag as the trainer named it (torch's text and mesh tag suffixes)."""
    for suffix in ("/text_summary", "_VERTEX"):
        if tag.endswith(suffix):
            return tag[: -len(suffix)]
    return tag


def expected_events(run: str, journal: Path) -> tuple[set[Key], int, int]:
    """(events expected in the run after purges, events logged, events purged)."""
    lives: dict[int, int] = {}
    events: dict[int, list[tuple[str, int]]] = {}
    for line in journal.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "L":
            lives[int(parts[1])] = int(parts[2])
        elif len(parts) == 4:
            events.setdefault(int(parts[0]), []).append((parts[3], int(parts[1])))
    have: dict[tuple[str, int], int] = {}
    logged = purged = 0
    for life in sorted(lives):
        purge = lives[life]
        if purge >= 0:
            keep = {k: v for k, v in have.items() if k[1] < purge}
            purged += len(have) - len(keep)
            have = keep
        for key in events.get(life, []):
            logged += 1
            assert key not in have or have[key] != life, f"{run}: {key} logged twice in one life"
            have[key] = life
    return {(run, tag, step) for tag, step in have}, logged, purged


# -- TensorBoard's readers --------------------------------------------------------------


def read_raw(logs: Path) -> tuple[Counter[Key], list[str], int]:
    """Every event of every file, read to its end with TensorBoard's record reader."""
    from tensorboard.compat.proto import event_pb2
    from tensorboard.compat.tensorflow_stub import errors
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import PyRecordReader_New

    got: Counter[Key] = Counter()
    damaged = []
    files = sorted(p for p in logs.rglob("*") if "tfevents" in p.name and p.is_file())
    for f in files:
        run = str(f.parent.relative_to(logs))
        reader = PyRecordReader_New(str(f))
        while True:
            try:
                reader.GetNext()
            except errors.OutOfRangeError:
                break
            except errors.DataLossError as e:
                damaged.append(f"{f}: {e.message}")
                break
            e = event_pb2.Event.FromString(reader.record())
            got.update((run, base_tag(v.tag), e.step) for v in e.summary.value)
    return got, damaged, len(files)


def read_accumulator(logs: Path, runs: list[str]) -> Counter[Key]:
    """The legacy EventAccumulator per run, keeping every sample."""
    from tensorboard.backend.event_processing import event_accumulator as ea

    got: Counter[Key] = Counter()
    readers = {
        "scalars": "Scalars",
        "histograms": "Histograms",
        "images": "Images",
        "audio": "Audio",
        "tensors": "Tensors",
    }
    for run in runs:
        acc = ea.EventAccumulator(
            str(logs / run),
            size_guidance={
                ea.SCALARS: 0,
                ea.HISTOGRAMS: 0,
                ea.IMAGES: 0,
                ea.AUDIO: 0,
                ea.TENSORS: 0,
                ea.COMPRESSED_HISTOGRAMS: 0,
            },
        )
        acc.Reload()
        tags = acc.Tags()
        for category, method in readers.items():
            for tag in tags.get(category, []):
                got.update((run, base_tag(tag), x.step) for x in getattr(acc, method)(tag))
    return got


PLUGINS = ("scalars", "histograms", "text", "pr_curves", "mesh", "images", "audio")


def read_plugin_loader(logs: Path) -> Counter[Key]:
    """The plugin multiplexer behind ``MultiplexerDataProvider``, as TensorBoard's
    plugins read it with ``--load_fast=false``, nothing downsampled."""
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider
    from tensorboard.backend.event_processing import event_accumulator as ea
    from tensorboard.backend.event_processing import plugin_event_multiplexer as pem

    mux = pem.EventMultiplexer(
        size_guidance={ea.TENSORS: 0, ea.SCALARS: 0, ea.IMAGES: 0, ea.AUDIO: 0, ea.HISTOGRAMS: 0},
        tensor_size_guidance=dict.fromkeys(PLUGINS, 0),
    )
    mux.AddRunsFromDirectory(str(logs))
    mux.Reload()
    provider = data_provider.MultiplexerDataProvider(mux, str(logs))
    ctx = context.RequestContext()
    got: Counter[Key] = Counter()
    n = 1 << 40
    for plugin in PLUGINS:
        for read in (
            provider.read_scalars,
            provider.read_tensors,
            provider.read_blob_sequences,
        ):
            data = read(ctx, experiment_id="", plugin_name=plugin, downsample=n)
            for run, tags in data.items():
                for tag, points in tags.items():
                    got.update((run, base_tag(tag), p.step) for p in points)
    return got


def start_server(logs: Path, load_fast: bool, log: Path) -> Any:
    """``tests/integration/test_tensorboard_server.Server`` with every sample kept
    (the default keeps 1,000 scalars and 10 images per tag: a soak has more)."""
    import tests.integration.test_tensorboard_server as tbs
    from tests.integration.test_tensorboard_server import Server, free_port

    # A soak's run holds ~70,000 points per tag: a route may take longer than the
    # test's 10 s while the server still loads.
    tbs.HTTP_TIMEOUT = 120.0

    class AllSamples(Server):
        def __init__(self) -> None:
            self.name = f"load_fast={str(load_fast).lower()}"
            self.log = log
            self.port = free_port()
            self.base = f"http://127.0.0.1:{self.port}"
            self.children = []
            # 0 would mean "none" to the plugins (their downsample size), not "all".
            samples = ",".join(f"{p}=100000000" for p in (*PLUGINS, "distributions", "tensors"))
            with open(log, "wb") as err:
                self.proc = subprocess.Popen(
                    [
                        *(sys.executable, "-m", "tensorboard.main", "--logdir", str(logs)),
                        *("--host", "127.0.0.1", "--port", str(self.port)),
                        f"--load_fast={str(load_fast).lower()}",
                        *("--reload_interval", "5", "--samples_per_plugin", samples),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                )

    return AllSamples()


# Tags whose server route serves at most this many points per (run, tag), by design.
ROUTE_CAPS = {"hist": 501, "big": 501}


def read_server(s: Any) -> Counter[Key]:
    """Every step the server serves, per (run, tag), through each plugin's routes."""
    got: Counter[Key] = Counter()

    def add(run: str, tag: str, steps: list[int]) -> None:
        got.update((run, base_tag(tag), step) for step in steps)

    # The histograms route always downsamples to 51 points (HistogramsPlugin.SAMPLE_SIZE),
    # the distributions route to 501 (DistributionsPlugin.SAMPLE_SIZE), whatever
    # --samples_per_plugin says: see ROUTE_CAPS.
    for plugin in ("scalars", "distributions"):
        for run, tags in s.json(f"/data/plugin/{plugin}/tags").items():
            for tag in tags:
                rows = s.json(f"/data/plugin/{plugin}/{plugin}", {"run": run, "tag": tag})
                add(run, tag, [row[1] for row in rows])
    for run, tags in s.json("/data/plugin/text/tags").items():
        for tag in tags:
            rows = s.json("/data/plugin/text/text", {"run": run, "tag": tag})
            add(run, tag, [r["step"] for r in rows])
    for plugin in ("images", "audio"):
        for run, tags in s.json(f"/data/plugin/{plugin}/tags").items():
            for tag in tags:
                q = {"run": run, "tag": tag, "sample": 0}
                add(run, tag, [r["step"] for r in s.json(f"/data/plugin/{plugin}/{plugin}", q)])
    for run, tags in s.json("/data/plugin/pr_curves/tags").items():
        for tag in tags:
            got_ = s.json("/data/plugin/pr_curves/pr_curves", {"run": run, "tag": tag})
            add(run, tag, [r["step"] for r in got_[run]])
    for run, tags in s.json("/data/plugin/mesh/tags").items():
        for tag in tags:
            rows = s.json("/data/plugin/mesh/meshes", {"run": run, "tag": tag})
            add(run, tag, [r["step"] for r in rows])
    return got


def serve_and_read(logs: Path, tmp: Path, want: set[Key], limit: float) -> dict[str, Counter[Key]]:
    """Each server (one after the other) is read until it serves every wanted event,
    its counts stop changing for a minute, or ``limit`` seconds pass."""
    out: dict[str, Counter[Key]] = {}
    for lf in (True, False):  # one at a time: two loading servers starve each other
        out |= _serve_and_read(logs, tmp, want, limit, lf)
    return out


def _serve_and_read(
    logs: Path, tmp: Path, want: set[Key], limit: float, load_fast: bool
) -> dict[str, Counter[Key]]:
    servers = {load_fast: start_server(logs, load_fast, tmp / f"tensorboard-{load_fast}.log")}
    out: dict[str, Counter[Key]] = {}
    try:
        deadline = time.monotonic() + limit
        for s in servers.values():
            s.wait_answering(deadline)
        pending = dict(servers)
        last: dict[bool, tuple[int, float]] = {}
        while pending:
            for lf, s in list(pending.items()):
                try:
                    got = read_server(s)
                except (OSError, AssertionError, urllib.error.URLError) as e:
                    progress(f"{s.name}: a route failed ({e}); polling again")
                    got = None
                if got is not None:
                    out[s.name] = got
                    missing = tally(want, got, set(), ROUTE_CAPS)["lost"]
                    total = sum(got.values())
                    if missing == 0:
                        progress(f"{s.name}: serves every event ({total} points)")
                        del pending[lf]
                        continue
                    prev = last.get(lf)
                    if prev is None or prev[0] != total:
                        last[lf] = (total, time.monotonic())
                    elif time.monotonic() - prev[1] > 60:
                        progress(f"{s.name}: {missing} events still missing, no change for 60 s")
                        del pending[lf]
                        continue
                    progress(f"{s.name}: {total} points served, {missing} wanted still missing")
                if time.monotonic() > deadline:
                    del pending[lf]
            if pending:
                time.sleep(5)  # the servers reload every 5 s
    finally:
        for s in servers.values():
            s.terminate()
        for s in servers.values():
            s.reap()
    return out


def tally(
    want: set[Key],
    got: Counter[Key],
    tags: set[tuple[str, str]],
    caps: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Lost (wanted, absent), duplicated (copies beyond one), not purged (present, not wanted).

    For a tag in ``caps`` (a server route that downsamples) lost is how many fewer
    distinct wanted steps than min(cap, wanted) it served."""
    caps = caps or {}
    lost = [k for k in want if got[k] == 0 and k[1] not in caps]
    per_tag = Counter((k[0], k[1]) for k in want if k[1] in caps)
    served = Counter((k[0], k[1]) for k in want if k[1] in caps and got[k] > 0)
    for (run, tag), n in per_tag.items():
        short = min(caps[tag], n) - served[run, tag]
        lost += [(run, tag, -1)] * max(0, short)
    mine = {k: c for k, c in got.items() if (k[0], k[1]) in tags}
    dup = sum(c - 1 for c in mine.values() if c > 1)
    unpurged = [k for k in mine if k not in want]
    return {
        "lost": len(lost),
        "duplicated": dup,
        "not purged": len(unpurged),
        "examples": sorted(lost)[:5]
        + sorted(unpurged)[:5]
        + sorted(k for k, c in mine.items() if c > 1)[:5],
    }


# -- main -------------------------------------------------------------------------------


class Replay:
    """A finished soak's kept temp dir (``logs-kept``, journals, ``events.log``), for
    ``--verify``: the verdict again, e.g. after a reader was fixed."""

    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        from types import SimpleNamespace

        self.args, self.tmp = args, tmp
        self.disk = SimpleNamespace(path=tmp / "logs-kept")
        dirs = sorted(tmp.glob("trainer*"), key=lambda p: int(p.name[7:]))
        self.trainers = [SimpleNamespace(i=i, dir=p, failures=[]) for i, p in enumerate(dirs)]
        args.trainers = len(self.trainers)
        self.d = SimpleNamespace(runtime_dir=tmp / "rt", rings=lambda: [])
        self.counts: Counter[str] = Counter()
        self.gaps: list[float] = []
        self.problems: list[str] = []
        for line in (tmp / "events.log").read_text().splitlines():
            msg = line.split(" ", 1)[1]
            if msg.startswith("SIGKILL trainer"):
                self.counts["trainer kills"] += 1
                self.counts["resumes"] += 1
            elif msg.startswith("SIGKILL daemon"):
                self.counts["daemon kills"] += 1
                with contextlib.suppress(ValueError):
                    self.gaps.append(float(msg.rsplit(" ", 1)[1]))
            elif msg.startswith("summaryd stop"):
                self.counts["stops"] += 1
                if "(rc 0)" not in msg.split(",")[0]:
                    self.problems.append(f"as recorded: {msg}")
            elif msg.startswith("disk full"):
                self.counts["disk-full episodes"] += 1
            elif msg.endswith("stopped; resuming"):
                self.counts["resumes"] += 1


def verdict(soak: Soak, minutes: float) -> int:
    logs = soak.disk.path
    want: set[Key] = set()
    logged = purged = 0
    for t in soak.trainers:
        w, n, p = expected_events(f"t{t.i}", t.dir / "journal")
        want |= w
        logged += n
        purged += p
    tags = {(run, tag) for run, tag, _ in want}
    leftovers = soak.d.rings()
    progress(f"reading back: {len(want)} events expected ({logged} logged, {purged} purged)")
    raw, damaged, nfiles = read_raw(logs)
    runs = sorted({str(p.parent.relative_to(logs)) for p in logs.rglob("*tfevents*")})
    results = {"record reader (raw)": tally(want, raw, tags)}
    progress("EventAccumulator")
    results["EventAccumulator"] = tally(want, read_accumulator(logs, runs), tags)
    progress("plugin multiplexer / MultiplexerDataProvider")
    results["plugin loader"] = tally(want, read_plugin_loader(logs), tags)
    progress("tensorboard servers")
    served = serve_and_read(logs, soak.tmp, want, soak.args.server_limit)
    for name in ("load_fast=true", "load_fast=false"):
        results[f"server {name}"] = tally(want, served.get(name, Counter()), tags, ROUTE_CAPS)

    c = soak.counts
    lost = max(r["lost"] for r in results.values())
    dup = max(r["duplicated"] for r in results.values())
    unpurged = max(r["not purged"] for r in results.values())
    rows = [
        ("minutes", f"{minutes:.1f}"),
        ("trainers", soak.args.trainers),
        ("trainer kills", c["trainer kills"]),
        ("daemon kills", c["daemon kills"]),
        ("stops", c["stops"]),
        ("disk-full episodes", c["disk-full episodes"]),
        ("resumes", c["resumes"]),
        ("events logged", logged),
        ("  expected purged", purged),
        ("  expected in the files", len(want)),
        ("lost", lost),
        ("duplicated", dup),
        ("not purged", unpurged),
        ("damaged files", f"{len(damaged)} of {nfiles}"),
        ("leftover rings/blobs", len(leftovers)),
    ]
    print("\n| soak | |\n|---|---:|")
    for k, v in rows:
        print(f"| {k} | {v:,} |" if isinstance(v, int) else f"| {k} | {v} |")
    print("\n| reader | lost | duplicated | not purged |\n|---|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['lost']} | {r['duplicated']} | {r['not purged']} |")
    if soak.gaps:
        print(
            f"\nafter a daemon SIGKILL a new one served in p50 {pct(soak.gaps, 0.5):.2f} s, "
            f"max {max(soak.gaps):.2f} s ({len(soak.gaps)} kills); "
            f"daemons started (daemon.log 'serving on'): {serving_lines(soak.d)}"
        )
    failures = [f for t in soak.trainers for f in t.failures] + soak.problems
    for name, r in results.items():
        if r["examples"]:
            print(f"{name}: examples {r['examples']}")
    for f in damaged:
        print(f"DAMAGED {f}")
    for f in leftovers:
        print(f"LEFTOVER /dev/shm/{f}")
    for f in failures:
        print(f"PROBLEM {f}")
    bad = lost or dup or unpurged or damaged or leftovers
    return 1 if bad or failures else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--trainers", type=int, default=4)
    ap.add_argument("--rate", type=float, default=10.0, help="steps/s per trainer")
    ap.add_argument("--gap", type=float, nargs=2, default=(5.0, 15.0), help="s between events")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--tmpfs-mib", type=int, default=512)
    ap.add_argument("--server-limit", type=float, default=900.0, help="s to wait for a server")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (not the tmpfs)")
    ap.add_argument(
        "--verify",
        type=Path,
        metavar="TMPDIR",
        help="no workload: the verdict again over a failed soak's kept temp dir "
        "(its logs-kept/, journals and events.log; --minutes: the run's length)",
    )
    args = ap.parse_args()

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # the same clean-up as Ctrl-C

    signal.signal(signal.SIGTERM, on_term)
    if args.verify is not None:
        return verdict(Replay(args, args.verify), args.minutes)  # type: ignore[arg-type]
    if args.seed is None:
        args.seed = random.randrange(1 << 30)
    if os.geteuid() != 0:
        sys.exit("soak.py mounts a tmpfs: run it as root")
    tmp = Path(tempfile.mkdtemp(prefix="sdsoak-", dir="/tmp"))
    progress(f"seed {args.seed}, temp dir {tmp}")

    soak: Soak | None = None
    code = 2
    try:
        soak = Soak(args, tmp)
        t0 = time.monotonic()
        soak.run()
        code = verdict(soak, (time.monotonic() - t0) / 60)
    finally:
        if soak is not None:
            soak.cleanup(keep_logs=code != 0)
        if not args.keep and code == 0:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            progress(f"kept {tmp} (journals, trainer output, logs-kept/, rt/daemon.log)")
    return code


if __name__ == "__main__":
    sys.exit(main())
