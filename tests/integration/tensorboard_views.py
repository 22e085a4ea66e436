"""What a ``tensorboard`` server serves for one side, decoded and normalised; two compared.

``SideView`` reads every per-run route of every plugin one server serves for
one side (``torch`` or ``ours``), keyed by the run relative to the side, with
live wall times normalised and media decoded (``Decoded``: PNG pixels, GIF
frames; ``Wav``: samples), never compared as encoded bytes. ``differences``
lists where two views differ (GIF frames within the palette's tolerance).
Used by ``test_tensorboard_server.py``.
"""

from __future__ import annotations

import dataclasses
import io
import wave
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ..differential.compare import LIVE, Clock

if TYPE_CHECKING:  # only an annotation: the test module imports this one
    from .test_tensorboard_server import Server

# -- what a server serves for one side, decoded and normalised -------------------------------


@dataclasses.dataclass
class Decoded:
    """A served image decoded: PNG pixels (exact) or GIF frames (palette tolerance)."""

    content_type: str
    mode: str
    size: tuple[int, int]
    frames: list[np.ndarray]  # RGB(A) arrays, one per frame
    info: dict[str, Any]  # per frame: duration, loop

    @classmethod
    def of(cls, content_type: str, data: bytes) -> Decoded:
        from PIL import Image, ImageSequence

        im = Image.open(io.BytesIO(data))
        frames, info = [], []
        for f in ImageSequence.Iterator(im):
            frames.append(np.asarray(f.convert("RGBA" if "A" in f.mode else "RGB")))
            info.append({k: f.info.get(k) for k in ("duration", "loop")})
        return cls(content_type, im.mode, im.size, frames, {"frames": info, "format": im.format})


@dataclasses.dataclass
class Wav:
    content_type: str
    params: tuple[int, int, int, int, str]  # channels, sample width, rate, frames, compression
    samples: np.ndarray

    @classmethod
    def of(cls, content_type: str, data: bytes) -> Wav:
        with wave.open(io.BytesIO(data)) as w:
            p = w.getparams()
            raw = w.readframes(p.nframes)
        dtype = {1: np.uint8, 2: np.int16, 4: np.int32}[p.sampwidth]
        return cls(
            content_type,
            (p.nchannels, p.sampwidth, p.framerate, p.nframes, p.comptype),
            np.frombuffer(raw, dtype=dtype),
        )


MESH_DTYPES = {"VERTEX": np.float32, "FACE": np.int32, "COLOR": np.uint8}
MESH_CONTENT = {1: "VERTEX", 2: "FACE", 3: "COLOR"}  # MeshPluginData.ContentType
HPARAM_NAMES = ["bsize", "flag", "lr", "opt", "t"]
METRIC_TAGS = ["hparam/accuracy", "hparam/loss"]
CUSTOM_SCALAR_REGEXES = ["cs/a", "cs/lo", "cs/hi", "loss", "pair"]
View = dict[str, dict[tuple[str, str], Any]]  # plugin -> (run relative to the side, key) -> data


class SideView:
    """One side's data as one server serves it, decoded and normalised.

    On the ``both`` server the side's runs are ``<side>`` and ``<side>/...``;
    on a server of the side's own tree (``side=None``) they are ``.`` and the
    sub-runs.  Either way they are keyed by the run relative to the side.
    """

    def __init__(self, server: Server, side: str | None, clock: Clock) -> None:
        self.s = server
        self.side = side  # None: the server's log dir is the side's root
        self.clock = clock

    def rel(self, run: str) -> str | None:
        """The run relative to this side's root, or None if it belongs to the other side."""
        if self.side is None:
            return run
        if run == self.side:
            return "."
        if run.startswith(self.side + "/"):
            return run[len(self.side) + 1 :]
        return None

    def runs(self, runs: Any) -> dict[str, str]:
        """{served run name: run relative to the side} for this side's runs among ``runs``."""
        return {run: r for run in runs if (r := self.rel(run)) is not None}

    def wt(self, t: float) -> str:
        return LIVE if self.clock.is_live(t) else repr(t)

    def norm(self, obj: Any) -> Any:
        """Wall times normalised (live or explicit), run names made relative, recursively."""
        if isinstance(obj, dict):
            out = {}
            for k, v in obj.items():
                if k in ("wall_time", "wallTime", "wallTimeSecs", "startTimeSecs", "endTimeSecs"):
                    out[k] = self.wt(v) if isinstance(v, (int, float)) else v
                elif k in ("run", "name") and self.side and isinstance(v, str) and self.rel(v):
                    out[k] = "<run>/" + str(self.rel(v))
                else:
                    out[k] = self.norm(v)
            return out
        if isinstance(obj, list):
            return [self.norm(v) for v in obj]
        return obj

    def series(self, rows: list[list[Any]]) -> list[list[Any]]:
        """[wall_time, step, data] rows (scalars, histograms, distributions)."""
        return [[self.wt(r[0]), *r[1:]] for r in rows]

    # -- per-run plugins --------------------------------------------------------

    def scalars(self) -> dict[tuple[str, str], Any]:
        out = {}
        for run, tags in self.s.json("/data/plugin/scalars/tags").items():
            if (r := self.rel(run)) is not None:
                for tag in tags:
                    rows = self.s.json("/data/plugin/scalars/scalars", {"run": run, "tag": tag})
                    out[r, tag] = self.series(rows)
        return out

    def histograms(self, plugin: str = "histograms") -> dict[tuple[str, str], Any]:
        out = {}
        for run, tags in self.s.json(f"/data/plugin/{plugin}/tags").items():
            if (r := self.rel(run)) is not None:
                for tag in tags:
                    rows = self.s.json(f"/data/plugin/{plugin}/{plugin}", {"run": run, "tag": tag})
                    out[r, tag] = self.series(rows)
        return out

    def distributions(self) -> dict[tuple[str, str], Any]:
        return self.histograms("distributions")

    def text(self) -> dict[tuple[str, str], Any]:
        out = {}
        for run, tags in self.s.json("/data/plugin/text/tags").items():
            if (r := self.rel(run)) is not None:
                for tag in tags:
                    rows = self.s.json("/data/plugin/text/text", {"run": run, "tag": tag})
                    out[r, tag] = self.norm(rows)
        return out

    def images(self) -> dict[tuple[str, str], Any]:
        return self._samples("images", "individualImage", "image", Decoded.of)

    def audio(self) -> dict[tuple[str, str], Any]:
        return self._samples("audio", "individualAudio", "wav", Wav.of)

    def _samples(
        self, plugin: str, individual: str, field: str, decode: Callable[[str, bytes], Any]
    ) -> dict[tuple[str, str], Any]:
        """Every sample of every tag of a media plugin, each decoded into ``field``."""
        out = {}
        for run, tags in self.s.json(f"/data/plugin/{plugin}/tags").items():
            if (r := self.rel(run)) is None:
                continue
            for tag, meta in tags.items():
                samples = []
                for k in range(meta["samples"]):
                    rows = self.s.json(
                        f"/data/plugin/{plugin}/{plugin}", {"run": run, "tag": tag, "sample": k}
                    )
                    for row in rows:
                        ctype, data = self.s.request(
                            f"/data/plugin/{plugin}/{individual}?" + row.pop("query")
                        )
                        row[field] = decode(ctype, data)
                    samples.append(self.norm(rows))
                out[r, tag] = {"meta": meta, "samples": samples}
        return out

    def pr_curves(self) -> dict[tuple[str, str], Any]:
        out = {}
        for run, tags in self.s.json("/data/plugin/pr_curves/tags").items():
            if (r := self.rel(run)) is not None:
                for tag, meta in tags.items():
                    got = self.s.json("/data/plugin/pr_curves/pr_curves", {"run": run, "tag": tag})
                    out[r, tag] = {"meta": meta, "curves": self.norm(got[run])}
        return out

    def mesh(self) -> dict[tuple[str, str], Any]:
        out = {}
        for run, tags in self.s.json("/data/plugin/mesh/tags").items():
            if (r := self.rel(run)) is None:
                continue
            for tag, meta in tags.items():
                rows = self.s.json("/data/plugin/mesh/meshes", {"run": run, "tag": tag})
                # The Rust loader lists a step's three instance tags (vertices,
                # faces, colours) in no fixed order.
                rows.sort(key=lambda row: (row["step"], row["content_type"]))
                data = {}
                for row in rows:
                    kind = MESH_CONTENT[row["content_type"]]
                    for k in range(meta["samples"]):
                        params = {
                            "run": run,
                            "tag": tag,
                            "step": row["step"],
                            "content_type": kind,
                            "sample": k,
                        }
                        _, raw = self.s.request("/data/plugin/mesh/data", params)
                        data[row["step"], kind, k] = np.frombuffer(raw, MESH_DTYPES[kind])
                out[r, tag] = {"meta": meta, "meshes": self.norm(rows), "data": data}
        return out

    def graphs(self) -> dict[tuple[str, str], Any]:
        """The run's graph (tag ""), and each tagged run metadata (torch's "step1")."""
        out: dict[tuple[str, str], Any] = {}
        for run, info in self.s.json("/data/plugin/graphs/info").items():
            if (r := self.rel(run)) is None:
                continue
            if info["run_graph"]:
                _, g = self.s.request("/data/plugin/graphs/graph", {"run": run})
                out[r, ""] = g.decode()
            for tag, tag_info in info["tags"].items():
                _, md = self.s.request("/data/plugin/graphs/run_metadata", {"run": run, "tag": tag})
                out[r, tag] = {"info": tag_info, "run_metadata": md.decode()}
        return out

    def hparams(self) -> dict[tuple[str, str], Any]:
        """Session groups (per run, unlike the experiment) and each metric's evaluations."""
        request = {
            "experimentName": "",
            "allowedStatuses": [
                "STATUS_UNKNOWN",
                "STATUS_SUCCESS",
                "STATUS_FAILURE",
                "STATUS_RUNNING",
            ],
            "colParams": [{"hparam": h} for h in HPARAM_NAMES]
            + [{"metric": {"tag": m, "group": ""}} for m in METRIC_TAGS],
            "startIndex": 0,
            "sliceSize": 100,
        }
        groups = self.s.json("/data/plugin/hparams/session_groups", body=request)
        out = {}
        for group in groups.get("sessionGroups", []):
            for session in group["sessions"]:
                if (r := self.rel(session["name"])) is None:
                    continue
                evals = {
                    m: self.series(
                        self.s.json(
                            "/data/plugin/hparams/metric_evals",
                            body={
                                "experimentName": "",
                                "sessionName": session["name"],
                                "metricName": {"tag": m, "group": ""},
                            },
                        )
                    )
                    for m in METRIC_TAGS
                }
                out[r, "session"] = {
                    "hparams": group["hparams"],
                    "session": self.norm(session),
                    "metric_evals": evals,
                }
        return out

    def custom_scalars(self) -> dict[tuple[str, str], Any]:
        """What the dashboard's charts load: per run, the scalars matching each chart's regex."""
        out = {}
        for run, r in self.runs(self.s.json("/data/runs")).items():
            for regex in CUSTOM_SCALAR_REGEXES:
                got = self.s.json("/data/plugin/custom_scalars/scalars", {"run": run, "tag": regex})
                if got["tag_to_events"]:
                    got["tag_to_events"] = {
                        t: self.series(v) for t, v in got["tag_to_events"].items()
                    }
                    out[r, regex] = got
        return out

    def projector(self) -> dict[tuple[str, str], Any]:
        out = {}
        for run, r in self.runs(self.s.json("/data/plugin/projector/runs")).items():
            config = self.s.json("/data/plugin/projector/info", {"run": run})
            out[r, "<config>"] = config
            for emb in config.get("embeddings", []):
                name = emb["tensorName"]
                q = {"run": run, "name": name}
                _, raw = self.s.request("/data/plugin/projector/tensor", q)
                got: dict[str, Any] = {
                    "tensor": np.frombuffer(raw, np.float32).reshape(
                        [int(d) for d in emb["tensorShape"]]
                    )
                }
                if emb.get("metadataPath"):
                    got["metadata"] = self.s.request("/data/plugin/projector/metadata", q)[1]
                if emb.get("sprite"):
                    got["sprite"] = Decoded.of(
                        *self.s.request("/data/plugin/projector/sprite_image", q)
                    )
                out[r, name] = got
        return out

    # -- routes that merge all runs (servers of one side only) --------------------------

    def merged(self) -> dict[tuple[str, str], Any]:
        experiment = self.s.json("/data/plugin/hparams/experiment", body={"experimentName": ""})
        listing = self.s.json("/data/plugins_listing")
        return {
            ("*", "runs"): sorted(self.s.json("/data/runs")),
            ("*", "plugins_listing"): {p: m["enabled"] for p, m in listing.items()},
            ("*", "custom_scalars/layout"): self.s.json("/data/plugin/custom_scalars/layout"),
            ("*", "hparams/experiment"): self.norm(experiment),
        }


# -- comparing two views ----------------------------------------------------------------------

# A GIF frame holds at most 256 colours; torch (moviepy -> imageio -> Pillow's
# median cut) and summaryd may choose different palettes for the same frame.
# For VIDEO, torch's frames differ from the source by mean 3.4 / max 20 per
# channel, and Pillow's other quantizers (max coverage, fast octree, with or
# without dithering) differ from torch's by mean <= 6.1 / max <= 43.  Real
# mistakes are far outside: frames off by one (mean >= 24), channels swapped
# (>= 40), rows flipped (43), values halved (>= 60).
GIF_MEAN_TOLERANCE = 8.0
GIF_MAX_TOLERANCE = 64


def _short(v: Any) -> str:
    if isinstance(v, np.ndarray):
        v = v.tolist()
    text = repr(v)
    return text if len(text) <= 300 else text[:300] + "...(truncated)"


def differences(ref: Any, ours: Any, path: str = "", out: list[str] | None = None) -> list[str]:
    """Where ``ours`` differs from ``ref``: one line per leaf, naming its path, torch's and ours."""
    out = [] if out is None else out
    if len(out) >= 20:
        return out
    if isinstance(ref, Decoded) and isinstance(ours, Decoded):
        gif = ref.info["format"] == "GIF"
        differences(
            {k: v for k, v in dataclasses.asdict(ref).items() if k != "frames"},
            {k: v for k, v in dataclasses.asdict(ours).items() if k != "frames"},
            path,
            out,
        )
        differences(len(ref.frames), len(ours.frames), path + ".frame_count", out)
        for i, (a, b) in enumerate(zip(ref.frames, ours.frames, strict=False)):
            where = f"{path}.frames[{i}]"
            if a.shape != b.shape:
                out.append(f"{where}: shape torch {a.shape}, ours {b.shape}")
                continue
            d = np.abs(a.astype(int) - b.astype(int))
            if gif:
                if d.mean() > GIF_MEAN_TOLERANCE or d.max() > GIF_MAX_TOLERANCE:
                    out.append(
                        f"{where}: GIF frame differs beyond the palette tolerance: mean "
                        f"{d.mean():.2f} (<= {GIF_MEAN_TOLERANCE}), max {d.max()} "
                        f"(<= {GIF_MAX_TOLERANCE})"
                    )
            elif d.any():
                idx = tuple(int(x) for x in np.argwhere(d)[0])
                out.append(
                    f"{where}: {int((d > 0).any(axis=-1).sum())} pixels differ, first at (y, x, c)="
                    f"{idx}: torch {a[idx]}, ours {b[idx]}"
                )
        return out
    if dataclasses.is_dataclass(ref) and type(ref) is type(ours):
        for f in dataclasses.fields(ref):
            differences(getattr(ref, f.name), getattr(ours, f.name), f"{path}.{f.name}", out)
        return out
    if isinstance(ref, np.ndarray) and isinstance(ours, np.ndarray):
        if ref.dtype != ours.dtype or ref.shape != ours.shape or not np.array_equal(ref, ours):
            out.append(
                f"{path}: torch {ref.dtype}{list(ref.shape)} {_short(ref)}, "
                f"ours {ours.dtype}{list(ours.shape)} {_short(ours)}"
            )
        return out
    if isinstance(ref, dict) and isinstance(ours, dict):
        for k in [*ref, *(k for k in ours if k not in ref)]:
            where = f"{path}[{k!r}]"
            if k not in ours:
                out.append(f"{where}: torch {_short(ref[k])}, ours has none")
            elif k not in ref:
                out.append(f"{where}: torch has none, ours {_short(ours[k])}")
            else:
                differences(ref[k], ours[k], where, out)
        return out
    if isinstance(ref, (list, tuple)) and isinstance(ours, (list, tuple)):
        if len(ref) != len(ours):
            out.append(f"{path}: torch has {len(ref)} items, ours {len(ours)}")
        for i, (a, b) in enumerate(zip(ref, ours, strict=False)):
            differences(a, b, f"{path}[{i}]", out)
        return out
    if isinstance(ref, float) and isinstance(ours, float) and np.isnan(ref) and np.isnan(ours):
        return out
    if type(ref) is not type(ours) or ref != ours:
        out.append(f"{path}: torch {_short(ref)}, ours {_short(ours)}")
    return out
