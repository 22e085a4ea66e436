"""End to end: a real ``tensorboard`` server serves summaryd's logs as it serves torch's.

One of every ``SummaryWriter`` method is called through
``torch.utils.tensorboard.SummaryWriter`` into ``<root>/torch`` and through
summaryd, with a real daemon, into ``<root>/ours`` (STYLE.md section 11).
Then, once per loader (``--load_fast=true``: the Rust data server;
``--load_fast=false``: the Python multiplexer), three ``tensorboard``
processes are started on loopback:

* ``both`` on ``<root>``: the two sides are runs ``torch`` and ``ours`` (with
  their sub-runs ``torch/pair_x``, ``ours/hp``, ...).  Every per-run route of
  every plugin is read for both, run names and live wall times normalised, and
  compared; media are compared decoded (PNG pixels, GIF frames within the
  palette's tolerance, WAV samples), never as encoded bytes.
* ``torch`` on ``<root>/torch`` and ``ours`` on ``<root>/ours``: for the two
  routes that merge every run into one answer (``custom_scalars/layout``
  merges the layouts of all runs and drops charts it has seen;
  ``hparams/experiment`` unions the hyperparameter domains of all sessions),
  where on the ``both`` server a difference of ours would be hidden by
  torch's copy.  These servers also give ``/data/runs`` and
  ``/data/plugins_listing`` per side.

Loading is awaited by polling the HTTP API until every (plugin, run, tag)
this file logs is served with all its steps (bounded; the failure names what
is missing), never by sleeping.

No check is skipped in either mode: with TensorBoard 2.21 and its data server
0.7.2 both loaders serve every plugin here, and
``test_every_logged_series_is_served`` asserts per loader that all of torch's
series are served, so a loader that stops serving a plugin fails there.  The
loaders do serve some things differently, the same for both sides: with
``load_fast=true`` audio comes as ``application/octet-stream`` (not
``audio/wav``), image and audio tags have an empty ``displayName``, histogram
buckets have float64 edges (float32 from the Python loader, and one bucket
fewer), and a mesh's three instance tags come in no fixed order (sorted here).
``add_tensor`` writes the ``tensor`` plugin, which no dashboard serves: it is
compared as TensorBoard's own loader reads it instead.

A summaryd method that raises is recorded and fails only the plugins fed by it
(``Logged.failures``), so one unfinished method does not hide the others.

What a server serves for one side is read, decoded and compared by
``tensorboard_views.py``; the ``Server`` (one ``tensorboard`` process) stays
here, where ``test_shared_dir.py``, ``tests/s3`` and ``benchmarks/soak.py``
import it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from torch.utils.tensorboard import SummaryWriter as TorchWriter

from ..conftest import isolated_env
from ..differential.compare import Clock
from ..peers.log_every_kind import CALLS, Key, expected, log_every_kind, write_onnx_model
from .tensorboard_views import SideView, View, differences

pytestmark = [pytest.mark.integration, pytest.mark.differential]

SIDES = ("torch", "ours")
PEER = Path(__file__).resolve().parent.parent / "peers" / "log_every_kind.py"
PEER_TIMEOUT = 60.0
LOAD_DEADLINE = 45.0  # seconds for a server to answer and to serve everything
HTTP_TIMEOUT = 10.0


@dataclasses.dataclass
class Logged:
    root: Path
    clock: Clock
    failures: dict[str, str]  # summaryd method -> what it raised
    warnings: list[str]  # what summaryd warned while logging


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Logged]:
    """Both trees, complete on disk.

    Ours is logged by a peer process (a trainer: it closes its writers and
    exits) while torch's is logged here; then the daemon is stopped by PID,
    which drains every ring and closes every file.
    """
    base = tmp_path_factory.mktemp("tb-e2e")
    root = base / "logs"
    onnx_path = base / "model.onnx"
    write_onnx_model(onnx_path)
    clock = Clock()
    with (
        pytest.MonkeyPatch.context() as mp,
        isolated_env(tmp_path_factory.mktemp("daemon"), mp) as d,
    ):
        d.start()
        env = d.env | {
            "PEER_WRITER": "summaryd",
            "PEER_LOG_DIR": str(root / "ours"),
            "PEER_ONNX": str(onnx_path),
            "PEER_RESULT": str(base / "ours.json"),
        }
        with open(base / "peer.stderr", "wb") as err:
            peer = subprocess.Popen(
                [sys.executable, str(PEER)],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        try:
            ref = log_every_kind(TorchWriter, root / "torch", onnx_path)
            rc = peer.wait(PEER_TIMEOUT)
        finally:
            if peer.poll() is None:
                peer.kill()
                peer.wait()
        assert rc == 0, (
            f"the summaryd peer exited with {rc}:\n"
            + ((base / "peer.stderr").read_text(errors="replace")[-3000:])
        )
    assert ref == {"errors": {}, "warnings": []}, f"torch's writer itself failed: {ref}"
    ours = json.loads((base / "ours.json").read_text())
    yield Logged(root, clock, ours["errors"], ours["warnings"])


# -- one tensorboard process ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A ``tensorboard`` process on 127.0.0.1 (never --bind_all), stopped by PID."""

    def __init__(self, name: str, logdir: Path, load_fast: bool, log: Path) -> None:
        self.name = name
        self.log = log
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.children: list[Any] = []  # psutil.Process, set by terminate()
        with open(log, "wb") as err:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tensorboard.main",
                    "--logdir",
                    str(logdir),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    f"--load_fast={str(load_fast).lower()}",
                    "--reload_interval",
                    "1",
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )

    def terminate(self) -> None:
        """SIGTERM by PID; its children (the Rust data server, which exits when its
        parent closes its stdin) are remembered, to be reaped by ``reap``."""
        import psutil

        try:
            self.children = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            self.children = []
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)

    def reap(self) -> None:
        """Wait for the process and its children; SIGKILL what outlives the wait."""
        import psutil

        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        _, alive = psutil.wait_procs(self.children, timeout=5)
        for child in alive:
            child.kill()  # psutil checks it is still the same process (not a reused PID)
        psutil.wait_procs(alive, timeout=5)

    def stderr_tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:]

    def request(
        self, route: str, params: dict[str, Any] | None = None, body: Any = None
    ) -> tuple[str, bytes]:
        """(Content-Type, body) of GET ``route?params``, or of POST ``body`` as JSON."""
        url = self.base + route
        if params:
            url += "?" + urllib.parse.urlencode(params)
        data = None if body is None else json.dumps(body).encode()
        # The hparams routes parse request.data, which werkzeug leaves empty for
        # urllib's default form content type.
        headers = {"Content-Type": "application/json"} if body is not None else {}
        req = urllib.request.Request(url, data=data, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT) as r:
                return r.headers.get("Content-Type", ""), r.read()
        except urllib.error.HTTPError as e:
            raise AssertionError(
                f"{self.name}: {url} answered {e.code}: {e.read()[:500]!r}"
            ) from None

    def json(self, route: str, params: dict[str, Any] | None = None, body: Any = None) -> Any:
        return json.loads(self.request(route, params, body)[1])

    def wait_answering(self, deadline: float) -> None:
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"{self.name}: tensorboard exited with {self.proc.returncode}:\n"
                    + self.stderr_tail()
                )
            try:
                self.request("/data/plugins_listing")
                return
            except (OSError, AssertionError):
                pass  # not listening yet
            assert time.monotonic() < deadline, (
                f"{self.name}: tensorboard did not answer within {LOAD_DEADLINE} s:\n"
                + self.stderr_tail()
            )
            time.sleep(0.1)


# -- loading: poll until every logged series is served ---------------------------------------

PER_RUN_PLUGINS = [
    "scalars",
    "histograms",
    "distributions",
    "text",
    "images",
    "audio",
    "pr_curves",
    "mesh",
    "graphs",
    "hparams",
    "custom_scalars",
    "projector",
]
MERGED_ROUTES = ["runs", "plugins_listing", "custom_scalars/layout", "hparams/experiment"]
GRACE = 15.0  # seconds ours may take to load after torch's copy (read by the same loader) has


def collect(view: SideView, merged: bool) -> View:
    out = {p: getattr(view, p)() for p in PER_RUN_PLUGINS}
    if merged:
        out["merged"] = view.merged()
    return out


def _steps(plugin: str, data: Any) -> list[int]:
    if plugin in ("scalars", "histograms", "distributions"):
        return [row[1] for row in data]
    if plugin == "text":
        return [row["step"] for row in data]
    if plugin in ("images", "audio"):
        return [row["step"] for row in data["samples"][0]] if data["samples"] else []
    if plugin == "pr_curves":
        return [c["step"] for c in data["curves"]]
    if plugin == "mesh":
        return sorted({row["step"] for row in data["meshes"]})
    if plugin == "hparams":
        return sorted({m["trainingStep"] for m in data["session"]["metricValues"]})
    return []  # graphs, projector: present or not


def inventory(v: View) -> dict[Key, list[int]]:
    """The (plugin, run, tag) -> steps a view holds, in the shape of ``expected()``."""
    inv: dict[Key, list[int]] = {}
    for plugin in PER_RUN_PLUGINS:
        if plugin == "custom_scalars":
            continue  # the scalars again, through the custom scalars route
        for (run, tag), data in v[plugin].items():
            if tag != "<config>":
                inv[plugin, run, tag] = _steps(plugin, data)
    if "merged" in v:
        for category in v["merged"]["*", "custom_scalars/layout"].get("category", []):
            inv["custom_scalars/layout", "*", category["title"]] = []
        experiment = v["merged"]["*", "hparams/experiment"]
        for info in experiment.get("hparamInfos", []):
            inv["hparams/experiment", "*", info["name"]] = []
        for info in experiment.get("metricInfos", []):
            inv["hparams/experiment", "*", info["name"]["tag"]] = []
    return inv


@dataclasses.dataclass
class Target:
    """One side as one server serves it."""

    server: Server
    side: str  # "torch" or "ours"
    view: SideView
    merged: bool  # also read the routes that merge all runs (one-side servers)
    want: dict[Key, list[int]]
    got: View | None = None
    missing: str = "nothing read yet"

    @property
    def name(self) -> str:
        return f"{self.side} on the {self.server.name!r} server"

    def poll(self) -> bool:
        try:
            got = collect(self.view, self.merged)
        except (OSError, AssertionError) as e:  # e.g. a run listed before its data
            self.missing = f"a route failed: {e}"
            return False
        self.got = got
        inv = inventory(got)
        wrong = {k: (inv.get(k, "<none>"), v) for k, v in self.want.items() if inv.get(k) != v}
        self.missing = "; ".join(f"{k}: served steps {g}, want {w}" for k, (g, w) in wrong.items())
        return not wrong


@dataclasses.dataclass
class Served:
    load_fast: bool
    views: dict[tuple[str, str], View]  # (server, side) -> what it served
    unloaded: dict[str, str]  # target -> what ours never served in time

    @property
    def mode(self) -> str:
        return f"load_fast={str(self.load_fast).lower()}"

    def get(self, server: str, side: str, plugin: str) -> Any:
        return self.views[server, side].get(plugin, "<never read: see unloaded>")


def wait_until_served(targets: list[Target], load_fast: bool) -> dict[str, str]:
    """Poll every target until it serves all it should; torch's must, within LOAD_DEADLINE.

    Ours gets GRACE seconds after the last torch target (the same loader reading
    the same kinds of records): what it still misses then is returned, to fail
    the tests it concerns instead of every test of the mode.
    """
    start = time.monotonic()
    hard = start + LOAD_DEADLINE
    grace_end: float | None = None
    pending = list(targets)
    for t in {id(t.server): t.server for t in targets}.values():
        t.wait_answering(hard)
    while pending:
        for t in {id(t.server): t.server for t in pending}.values():
            if t.proc.poll() is not None:
                raise AssertionError(
                    f"{t.name} server (load_fast={load_fast}) exited with "
                    f"{t.proc.returncode}:\n{t.stderr_tail()}"
                )
        # The targets' routes are read in parallel: the Rust loader answers
        # each request after ~50 ms of gRPC, on its own core or not.
        with ThreadPoolExecutor(len(pending)) as pool:
            done = list(pool.map(Target.poll, pending))
        pending = [t for t, ok in zip(pending, done, strict=True) if not ok]
        now = time.monotonic()
        torch_pending = [t for t in pending if t.side == "torch"]
        if torch_pending:
            assert now < hard, (
                f"load_fast={load_fast}: within {LOAD_DEADLINE} s TensorBoard did not serve "
                + "; ".join(f"{t.name}: {t.missing}" for t in torch_pending)
            )
        else:
            grace_end = grace_end or min(now + GRACE, hard)
            if pending and now > grace_end:
                return {t.name: t.missing for t in pending}
        if pending:
            time.sleep(0.2)
    return {}


@pytest.fixture(scope="module", params=[True, False], ids=["load_fast=true", "load_fast=false"])
def served(
    request: pytest.FixtureRequest, logged: Logged, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """Three tensorboard processes of one loader (see the module docstring), all data served."""
    load_fast: bool = request.param
    logs = tmp_path_factory.mktemp(f"tensorboard-fast-{load_fast}")
    servers: list[Server] = []
    try:
        for name, logdir in (
            ("both", logged.root),
            ("torch", logged.root / "torch"),
            ("ours", logged.root / "ours"),
        ):
            servers.append(Server(name, logdir, load_fast, logs / f"{name}.stderr"))
        both, torch_only, ours_only = servers
        failed = logged.failures
        targets = [
            Target(both, "torch", SideView(both, "torch", logged.clock), False, {}),
            Target(both, "ours", SideView(both, "ours", logged.clock), False, {}),
            Target(torch_only, "torch", SideView(torch_only, None, logged.clock), True, {}),
            Target(ours_only, "ours", SideView(ours_only, None, logged.clock), True, {}),
        ]
        for t in targets:
            want = expected(failed if t.side == "ours" else ())
            t.want = {k: v for k, v in want.items() if t.merged or k[1] != "*"}
        unloaded = wait_until_served(targets, load_fast)
        views = {(t.server.name, t.side): t.got or {} for t in targets}
        yield Served(load_fast, views, unloaded)
    finally:
        for s in servers:  # all at once: each takes ~1-2 s to exit
            s.terminate()
        for s in servers:
            s.reap()


def methods_feeding(plugin: str) -> list[str]:
    return [m for m, _, serves in CALLS if any(s[0].split("/")[0] == plugin for s in serves)]


def require(logged: Logged, methods: list[str]) -> None:
    """Fail (not skip) when a summaryd method these checks need raised instead of logging."""
    failed = {m: logged.failures[m] for m in methods if m in logged.failures}
    if failed:
        pytest.fail(
            "summaryd raised instead of logging, so TensorBoard has nothing to compare: "
            + "; ".join(f"{m}: {e}" for m, e in failed.items())
        )


def assert_same(what: str, ref: Any, ours: Any) -> None:
    diff = differences(ref, ours)
    assert not diff, f"{what}: TensorBoard serves ours differently from torch's:\n  " + "\n  ".join(
        diff
    )


# -- the tests ----------------------------------------------------------------------------------


def test_summaryd_logged_everything_without_errors_or_warnings(logged: Logged) -> None:
    assert not logged.failures, f"summaryd's methods raised: {logged.failures}"
    assert not logged.warnings, f"summaryd warned: {logged.warnings}"


def test_every_logged_series_is_served(served: Served, logged: Logged) -> None:
    """Each loader serves all of torch's series (every plugin works in this mode), and ours'."""
    assert not served.unloaded, f"{served.mode}: never served: {served.unloaded}"
    for (server, side), view in served.views.items():
        want = expected(logged.failures if side == "ours" else ())
        want = {k: v for k, v in want.items() if server != "both" or k[1] != "*"}
        what = f"{served.mode}, {side} on the {server!r} server: (plugin, run, tag) -> steps"
        assert_same(what, want, inventory(view))


@pytest.mark.parametrize("plugin", PER_RUN_PLUGINS)
def test_plugin_serves_ours_as_torch(served: Served, logged: Logged, plugin: str) -> None:
    """Every per-run route of ``plugin``: ours == torch's, as runs of one server and alone."""
    methods = methods_feeding(plugin)
    if plugin == "custom_scalars":
        methods += ["add_scalar", "add_scalars"]
    require(logged, methods)
    for pair, what in (
        ((("both", "torch"), ("both", "ours")), "runs of one server"),
        ((("torch", "torch"), ("ours", "ours")), "one server each"),
    ):
        ref, ours = (served.get(*server_side, plugin) for server_side in pair)
        assert_same(f"{served.mode}, {plugin}, {what}", ref, ours)


@pytest.mark.parametrize("route", MERGED_ROUTES)
def test_merged_route_serves_ours_as_torch(served: Served, logged: Logged, route: str) -> None:
    """Routes that merge all runs, from a server of torch's tree and one of ours."""
    needs = {
        "runs": [],  # each run has scalars or layouts; a failed method shows as a difference
        "plugins_listing": [m for m, _, _ in CALLS],  # a plugin is listed if it has data
        "custom_scalars/layout": methods_feeding("custom_scalars"),
        "hparams/experiment": methods_feeding("hparams"),
    }
    require(logged, needs[route])
    ref = served.get("torch", "torch", "merged")["*", route]
    ours = served.get("ours", "ours", "merged")
    ours = ours["*", route] if isinstance(ours, dict) else ours
    assert_same(f"{served.mode}, {route}", ref, ours)


def test_add_tensor_in_tensorboards_reader(logged: Logged) -> None:
    """add_tensor's plugin ("tensor") has no dashboard: compared as TensorBoard's loader reads."""
    from ..differential.compare import accumulate

    require(logged, ["add_tensor"])
    got = {}
    for side in SIDES:
        acc = accumulate(logged.root / side)
        got[side] = {
            "metadata": acc.SummaryMetadata("tensor").SerializeToString(deterministic=True),
            "tensors": [
                (t.wall_time, t.step, t.tensor_proto.SerializeToString(deterministic=True))
                for t in acc.Tensors("tensor")
            ],
        }
    assert_same("add_tensor", got["torch"], got["ours"])
