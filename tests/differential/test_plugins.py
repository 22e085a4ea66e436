"""Differential: add_audio, add_custom_scalars*, add_mesh and add_hparams, torch vs summaryd.

The same calls through ``torch.utils.tensorboard.SummaryWriter`` (into
``tmp_path/torch``) and ``summaryd.SummaryWriter`` with a real daemon (into
``tmp_path/ours``); both trees are then read by TensorBoard and compared:

* event by event (``compare.py``: live wall times normalised, explicit ones
  equal to the bit), hparams' session-start content compared as parsed (its
  map is serialized in a per-process hash order by torch, sorted by summaryd);
* as TensorBoard's plugins serve them: audio through ``EventAccumulator``
  (WAV decoded, samples compared), the custom scalars plugin's merged layout,
  the mesh plugin's ``/tags``, ``/meshes`` and ``/data`` routes, and the
  hparams plugin's ``/experiment`` and ``/session_groups`` routes.
"""

from __future__ import annotations

import contextlib
import decimal
import io
import json
import os
import warnings
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from tensorboard.compat.proto import event_pb2
from tensorboard.plugins.hparams import plugin_data_pb2 as hp_data_pb2
from torch.utils.tensorboard import SummaryWriter as TorchWriter

from summaryd import SummaryWriter as OurWriter

from ..conftest import DaemonEnv
from ..unit.test_convert_plugins import BAD_CALLS
from .compare import (
    LIVE,
    Clock,
    RunDir,
    _assert_events_equal,
    accumulate,
    assert_trees_equal,
    normalise,
    read_tree,
)
from .compare import run_both as run_both_in_both_writers

pytestmark = [pytest.mark.differential, pytest.mark.integration]

with warnings.catch_warnings():
    # TensorBoard's vendored bleach/html5lib warns on import (plugin_util).
    warnings.simplefilter("ignore", DeprecationWarning)
    from tensorboard.plugins.custom_scalar import custom_scalars_plugin
    from tensorboard.plugins.hparams import hparams_plugin
    from tensorboard.plugins.mesh import mesh_plugin

Calls = Callable[[Any], None]

# Explicit wall times, far outside any test's time window (see compare.Clock).
WT = 1_234_567_890.25
WT2 = 1_000_000_000.5


def run_both(tmp_path: Path, calls: Calls) -> tuple[Path, Path, list[str]]:
    """``calls(writer)`` through torch and through summaryd; also what each printed."""
    printed: list[str] = []
    roots = run_both_in_both_writers(tmp_path, calls, printed=printed)
    return roots[0], roots[1], printed


# -- TensorBoard's plugins' view -----------------------------------------------------------


def _live(obj: Any, clock: Clock) -> Any:
    """A JSON value with wall times inside the test's window replaced by ``<live>``."""
    if isinstance(obj, dict):
        return {
            k: (
                LIVE if k in ("wall_time", "wallTimeSecs") and clock.is_live(v) else _live(v, clock)
            )
            for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [_live(v, clock) for v in obj]
    return obj


class Served:
    """TensorBoard's plugins over one log dir, as its HTTP routes serve them."""

    def __init__(self, logdir: Path) -> None:
        from tensorboard import context as tb_context
        from tensorboard.backend.event_processing import data_provider
        from tensorboard.backend.event_processing import plugin_event_multiplexer as pem
        from tensorboard.plugins import base_plugin

        mux = pem.EventMultiplexer()
        mux.AddRunsFromDirectory(str(logdir))
        mux.Reload()
        provider = data_provider.MultiplexerDataProvider(mux, str(logdir))
        self.context = base_plugin.TBContext(
            logdir=str(logdir), multiplexer=mux, data_provider=provider
        )
        self.request = tb_context.RequestContext()

    def _client(self, plugin: Any, route: str) -> Any:
        from werkzeug.test import Client
        from werkzeug.wrappers import Response

        return Client(plugin.get_plugin_apps()[route], Response)

    def custom_scalars_layout(self) -> Any:
        plugin = custom_scalars_plugin.CustomScalarsPlugin(self.context)
        return json.loads(plugin.layout_impl(self.request, ""))

    def hparams(self, clock: Clock) -> dict[str, Any]:
        plugin = hparams_plugin.HParamsPlugin(self.context)
        out = {}
        for route, body in (
            ("/experiment", {"experimentName": ""}),
            (
                "/session_groups",
                {
                    "experimentName": "",
                    "allowedStatuses": ["STATUS_SUCCESS", "STATUS_UNKNOWN"],
                    "colParams": [],
                    "startIndex": 0,
                    "sliceSize": 1000,
                },
            ),
        ):
            r = self._client(plugin, route).post(
                route, data=json.dumps(body), content_type="application/json"
            )
            assert r.status_code == 200, r.get_data()
            out[route] = _live(json.loads(r.get_data()), clock)
        return out

    def meshes(self, clock: Clock) -> dict[str, Any]:
        plugin = mesh_plugin.MeshPlugin(self.context)
        tags = json.loads(self._client(plugin, "/tags").get("/tags").get_data())
        out: dict[str, Any] = {"tags": tags}
        for run, by_tag in sorted(tags.items()):
            for tag, info in sorted(by_tag.items()):
                for sample in range(info["samples"]):
                    q = f"run={run}&tag={tag}&sample={sample}"
                    meta = json.loads(
                        self._client(plugin, "/meshes").get("/meshes?" + q).get_data()
                    )
                    out[f"{q} meshes"] = _live(meta, clock)
                    for m in meta:
                        ct = {1: "VERTEX", 2: "FACE", 3: "COLOR"}[m["content_type"]]
                        url = f"/data?{q}&content_type={ct}&step={m['step']}"
                        out[url] = self._client(plugin, "/data").get(url).get_data()
        return out


def audio_view(run_dir: Path, clock: Clock) -> dict[str, Any]:
    """``EventAccumulator.Audio`` per tag, each WAV decoded."""
    acc = accumulate(run_dir)
    out = {}
    for tag in sorted(acc.Tags()["audio"]):
        events = []
        for a in acc.Audio(tag):
            with wave.open(io.BytesIO(a.encoded_audio_string), "rb") as r:
                samples = np.frombuffer(r.readframes(r.getnframes()), "<i2").tolist()
                header = (r.getnchannels(), r.getsampwidth(), r.getframerate())
            wt = LIVE if clock.is_live(a.wall_time) else repr(a.wall_time)
            events.append(
                (wt, a.step, a.content_type, a.sample_rate, a.length_frames, header, samples)
            )
        out[tag] = events
    return out


# -- hparams: the session-start map compared as parsed --------------------------------------


def _canonical(ev: event_pb2.Event) -> event_pb2.Event:
    """``ev`` with any hparams plugin content re-serialized deterministically (map order)."""
    out = event_pb2.Event()
    out.CopyFrom(ev)
    for v in out.summary.value:
        data = v.metadata.plugin_data
        if data.plugin_name == "hparams":
            parsed = hp_data_pb2.HParamsPluginData.FromString(data.content)
            data.content = parsed.SerializeToString(deterministic=True)
    return out


def assert_canonical_trees_equal(
    torch_root: Path,
    ours_root: Path,
    clock: Clock,
    *,
    rename: Callable[[str], str] = lambda rel: rel,
) -> tuple[dict[str, RunDir], dict[str, RunDir]]:
    """``compare.assert_trees_equal`` with hparams contents canonical; ``rename`` maps
    run directories (time-named runs) before they are matched."""
    ref = {rename(k): v for k, v in read_tree(torch_root, natural_order=True).items()}
    ours = {rename(k): v for k, v in read_tree(ours_root).items()}
    assert sorted(ours) == sorted(ref)
    for rel in sorted(ref):
        assert len(ours[rel].files) == len(ref[rel].files), (rel, ref[rel].files, ours[rel].files)
        body_ref = [normalise(_canonical(e), clock) for evs in ref[rel].events for e in evs[1:]]
        body_ours = [normalise(_canonical(e), clock) for evs in ours[rel].events for e in evs[1:]]
        _assert_events_equal(f"run {rel!r}", body_ref, body_ours)
        heads_ref = [normalise(evs[0], clock) for evs in ref[rel].events]
        heads_ours = [normalise(evs[0], clock) for evs in ours[rel].events]
        _assert_events_equal(f"run {rel!r} (first events)", heads_ref, heads_ours)
    return ref, ours


# -- audio ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet_numpy() -> Iterator[None]:
    """torch's numpy casts warn (complex, NaN) in the trainer; summaryd warns alike
    (compared in the unit tests); here they would be errors (filterwarnings)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
        warnings.filterwarnings("ignore", "invalid value encountered in cast", RuntimeWarning)
        yield


def test_audio(shared_daemon: DaemonEnv, tmp_path: Path) -> None:
    t = np.linspace(0, 1, 44100, endpoint=False)
    sine = np.sin(2 * np.pi * 440 * t).astype(np.float32)

    def calls(w: Any) -> None:
        w.add_audio("speech", sine, 0)
        w.add_audio("speech", torch.tensor(sine[None, :] * 1.5), 1, walltime=WT)
        w.add_audio("speech", sine[:1000].astype(np.float16), 2, sample_rate=8000.5)
        w.add_audio(
            "ints", np.arange(-50, 50, dtype=np.int32), sample_rate=decimal.Decimal("16000.5")
        )
        w.add_audio("bool", np.array([True, False] * 10), 3, sample_rate=True)
        w.add_audio("bf16", torch.tensor(sine[:500]).bfloat16(), 4, walltime=WT2)
        with _quiet_numpy():
            w.add_audio("complex", (sine[:300] * 2 + 0.5j).astype(np.complex64), 5)
            nan = sine[:200].copy()
            nan[3] = np.nan
            w.add_audio("nan", nan, 6)

    clock = Clock()
    tr, ours, printed = run_both(tmp_path, calls)
    assert printed[0].count("auto clipped") == 3  # loud speech, ints, complex
    assert printed[1] == printed[0]
    assert_trees_equal(tr, ours, clock)
    ref = audio_view(tr, clock)
    assert sorted(ref) == ["bf16", "bool", "complex", "ints", "nan", "speech"]
    assert [e[4] for e in ref["speech"]] == [44100, 44100, 1000]
    assert audio_view(ours, clock) == ref


# -- custom scalars ------------------------------------------------------------------------


def test_custom_scalars(shared_daemon: DaemonEnv, tmp_path: Path) -> None:
    layout = {
        "Taiwan": {"twse": ["Multiline", ["twse/0050", "twse/2330"]]},
        "USA": {
            "dow": ["Margin", ["dow/aaa", "dow/bbb", "dow/ccc"]],
            "nasdaq": ["Margin", ["nasdaq/aaa", "nasdaq/bbb", "nasdaq/ccc"]],
        },
    }

    def calls(w: Any) -> None:
        for i in range(3):
            w.add_scalar("twse/0050", i, i)
            w.add_scalar("dow/aaa", i, i)
        w.add_custom_scalars(layout)
        w.add_custom_scalars_multilinechart(["twse/0050", "loss/.*"])
        w.add_custom_scalars_marginchart(("a", b"b", "c"), category="USA", title="margin ü")
        w.add_custom_scalars({b"bytes": {None: ("Multiline", None)}})

    clock = Clock()
    tr, ours, _ = run_both(tmp_path, calls)
    assert_trees_equal(tr, ours, clock)
    ref = Served(tr).custom_scalars_layout()
    # the plugin serves one layout per run (the one read_tensors keeps: the last written)
    assert [c["title"] for c in ref["category"]] == ["bytes"]
    assert Served(ours).custom_scalars_layout() == ref


def test_custom_scalars_in_several_runs(shared_daemon: DaemonEnv, tmp_path: Path) -> None:
    """The plugin merges the layouts of every run: a sub-writer's layout too."""

    def calls(w: Any) -> None:
        w.add_custom_scalars({"A": {"x": ["Multiline", ["a"]]}})
        sub = type(w)(os.path.join(w.get_logdir(), "sub"))
        sub.add_custom_scalars({"A": {"y": ["Margin", ["a", "b", "c"]]}, "B": {}})
        sub.close()

    clock = Clock()
    tr, ours, _ = run_both(tmp_path, calls)
    assert_trees_equal(tr, ours, clock)
    assert Served(ours).custom_scalars_layout() == Served(tr).custom_scalars_layout()


# -- mesh ----------------------------------------------------------------------------------

CUBE = np.array([[[1, 1, 1], [-1, -1, 1], [1, -1, -1], [-1, 1, -1]]], np.float32)
COLORS = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 0, 255]]], np.uint8)
FACES = np.array([[[0, 2, 3], [0, 3, 1], [0, 1, 2], [1, 3, 2]]], np.int32)
CONFIG = {
    "camera": {"cls": "PerspectiveCamera", "fov": 75},
    "lights": [{"cls": "AmbientLight", "color": "#ffffff", "intensity": 0.75}],
    "material": {"cls": "PointsMaterial", "size": 0.1},
}


def test_mesh(shared_daemon: DaemonEnv, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    cloud = rng.standard_normal((2, 500, 3))

    def calls(w: Any) -> None:
        w.add_mesh("cube", CUBE, colors=COLORS, faces=FACES, config_dict=CONFIG, global_step=0)
        w.add_mesh("cube", torch.as_tensor(CUBE) * 2, colors=torch.as_tensor(COLORS), global_step=1)
        w.add_mesh("cloud", cloud, global_step=3, walltime=WT)
        w.add_mesh("cloud", torch.tensor(cloud).bfloat16(), colors=cloud / 4 + 0.5, global_step=4)
        w.add_mesh("lists", CUBE.tolist(), faces=FACES.tolist(), config_dict=[1, 2])
        w.add_mesh("big", np.array([[[2**62 + 1, 2**53 + 1, 16777217]]]), global_step=5)
        w.add_mesh("nothing", None)

    clock = Clock()
    tr, ours, _ = run_both(tmp_path, calls)
    assert_trees_equal(tr, ours, clock)
    ref = Served(tr).meshes(clock)
    assert ref["tags"] == {
        ".": {
            "cube": {"samples": 1},
            "cloud": {"samples": 2},
            "lists": {"samples": 1},
            "big": {"samples": 1},
        }
    }
    assert len([k for k in ref if k.startswith("/data")]) == 14
    assert Served(ours).meshes(clock) == ref


@pytest.mark.parametrize("tag", [None, b"m", "ü"], ids=repr)
def test_mesh_tag_spellings(shared_daemon: DaemonEnv, tmp_path: Path, tag: Any) -> None:
    """torch's value tags are ``"%s_VERTEX" % tag`` (``None_VERTEX``, ``b'm'_VERTEX``),
    its plugin data's name the tag as protobuf takes it (None: unset)."""
    clock = Clock()
    tr, ours, _ = run_both(tmp_path, lambda w: w.add_mesh(tag, CUBE, COLORS, global_step=1))
    assert_trees_equal(tr, ours, clock)
    assert Served(ours).meshes(clock) == Served(tr).meshes(clock)


# -- hparams -------------------------------------------------------------------------------


def test_hparams(shared_daemon: DaemonEnv, tmp_path: Path) -> None:
    def calls(w: Any) -> None:
        w.add_scalar("main", 1.0, 0)
        for i in range(3):
            w.add_hparams(
                {
                    "lr": 0.1 * (i + 1),
                    "bsize": 2**i,
                    "opt": ["adam", "sgd", "adam"][i],
                    "amsgrad": i % 2 == 0,
                    "dropout": torch.tensor([0.5 - i / 10]),
                    "unused": None,
                    b"raw": "x",
                },
                {"hparam/accuracy": 10 * i, "hparam/loss": torch.tensor(1.0 / (i + 1))},
                hparam_domain_discrete={"opt": ["adam", "sgd"], "bsize": [1, 2, 4, 8]},
                run_name=f"trial-{i}",
                global_step=i if i else None,
            )

    clock = Clock()
    tr, ours, _ = run_both(tmp_path, calls)
    ref, _ = assert_canonical_trees_equal(tr, ours, clock)
    assert sorted(ref) == [".", "trial-0", "trial-1", "trial-2"]
    view = Served(tr).hparams(clock)
    assert len(view["/session_groups"]["sessionGroups"]) == 3
    assert Served(ours).hparams(clock) == view


@pytest.mark.parametrize("run_name", [None, ""], ids=["None", "empty"])
def test_hparams_default_run_name(
    shared_daemon: DaemonEnv, tmp_path: Path, run_name: str | None
) -> None:
    """No run name: torch's ``str(time.time())``, a run named for the moment of the call."""
    clock = Clock()
    tr, ours, _ = run_both(
        tmp_path, lambda w: w.add_hparams({"a": 1}, {"m": 2.0}, run_name=run_name)
    )
    for root in (tr, ours):
        (sub,) = [p.name for p in root.iterdir() if p.is_dir()]
        assert clock.is_live(float(sub)) and sub == str(float(sub))
    assert_canonical_trees_equal(tr, ours, clock, rename=lambda r: r if r == "." else "<time>")


def test_hparams_twice_in_one_run(shared_daemon: DaemonEnv, tmp_path: Path) -> None:
    """Two calls with one run name: torch opens (and closes) a writer on the run each
    time, two event files; summaryd too."""

    def calls(w: Any) -> None:
        w.add_hparams({"a": 1, "b": "x"}, {"m": 1.0}, run_name="same", global_step=1)
        w.add_hparams({"a": 2, "b": "y"}, {"m": 2.0}, run_name="same", global_step=2)

    clock = Clock()
    tr, ours, _ = run_both(tmp_path, calls)
    ref, _ = assert_canonical_trees_equal(tr, ours, clock)
    assert len(ref["same"].files) == 2
    assert Served(ours).hparams(clock) == Served(tr).hparams(clock)


# -- bad input through the writers ---------------------------------------------------------

# torch writes the hparams summaries before add_scalar fails on these metric values;
# summaryd checks every metric first and writes nothing (a deliberate difference).
_PARTIAL_IN_TORCH = {p.id for p in BAD_CALLS if p.id.startswith("hp-metric-value")}


def test_bad_input_through_the_writers(shared_daemon: DaemonEnv, tmp_path: Path) -> None:
    """Every bad-input case of test_convert_plugins through both real writers: summaryd
    raises an instance of what torch raises, and the rejected calls leave no trace."""
    clock = Clock()
    writers = TorchWriter(str(tmp_path / "torch")), OurWriter(str(tmp_path / "ours"))
    partial = TorchWriter(str(tmp_path / "torch-partial"))
    mismatches = []
    try:
        for w in writers:
            w.add_scalar("good", 1.0, 1)
        for p in BAD_CALLS:
            call = p.values[0]
            excs = []
            for w in writers:
                with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    target = w
                    if p.id in _PARTIAL_IN_TORCH and w is writers[0]:
                        target = partial  # torch writes a run before raising: not in the tree
                    try:
                        call(target)
                        excs.append(None)
                    except Exception as exc:
                        excs.append(exc)
            torch_exc, ours_exc = excs
            base = next(c for c in type(torch_exc).__mro__ if not c.__module__.startswith("numpy"))
            if torch_exc is None or not isinstance(ours_exc, base):
                mismatches.append((p.id, torch_exc, ours_exc))
        for w in writers:
            w.add_scalar("good", 2.0, 2)
    finally:
        for w in (*writers, partial):
            w.close()
    assert not mismatches
    ref, _ = assert_trees_equal(tmp_path / "torch", tmp_path / "ours", clock)
    assert list(ref) == ["."]
