"""Framework tests' harness: run a training script twice, compare what TensorBoard reads.

A script from ``scripts/`` runs in a fresh interpreter, once with the writer
its framework picks unpatched (torch's or tensorboardX's: the reference) and
once patched (``SUMMARYD_PATCH=1``, or under ``summaryd run --``), each in its
own directory with relative paths, so everything a framework derives from
its arguments (Hugging Face's ``args`` text, Lightning's ``hparams.yaml``) is
the same in both.  The two runs go concurrently: most of each is a
single-threaded ``import lightning`` / ``transformers``.

The trees are then compared with ``tests/differential/compare.py``'s readers
(TensorBoard's ``RawEventFileLoader`` and ``EventAccumulator``), per run
directory, with these normalisations on top of compare.py's (live wall times):

* run directories named by ``time.time()`` (``add_hparams`` without a run
  name, accelerate's ``hparams.yml``) are renamed ``<time>``;
* a run's files are concatenated in reading order and its ``file_version``
  events compared as a set: torch opens a new file per writer, summaryd
  appends a run's writers to one file (one file per run is the point);
* torch's trees get the purge a ``SessionLog.START`` at step R asks for
  (earlier events at steps >= R dropped); summaryd's daemon does it on disk
  (README "Resume with purge_step"), torch leaves it to loaders that disagree;
* hparams plugin contents are decoded (map order is per-process in torch);
* PNG images are decoded to pixels (summaryd's PNG bytes differ by design);
* values of ``volatile`` tags (run times, samples per second) are masked.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf.json_format import MessageToDict
from tensorboard.compat.proto import event_pb2, graph_pb2
from tensorboard.plugins.hparams import plugin_data_pb2

from ..conftest import DaemonEnv
from ..differential.compare import (
    Clock,
    _assert_events_equal,
    accumulate,
    accumulator_view,
    normalise,
    read_tree,
)

SCRIPTS = Path(__file__).resolve().parent / "scripts"
SCRIPT_TIMEOUT = 240.0
_TIME_DIR = re.compile(r"(?<![^/])\d{9,11}\.\d+(?![^/])")  # a path part that is time.time()
_PID_FIELD = re.compile(r"^events\.out\.tfevents\.\d+\.[^/]+\.(\d+)\.\d+")


# -- running the scripts -----------------------------------------------------------------


def script_env(d: DaemonEnv, tmp: Path, *, patched: bool) -> dict[str, str]:
    """The test daemon's environment for a script, patched or not, hermetic."""
    env = {k: v for k, v in d.env.items() if k != "SUMMARYD_PATCH"}
    if patched:
        env["SUMMARYD_PATCH"] = "1"
    env.update(
        SUMMARYD_NO_SPAWN="1",  # a script that misses the test's daemon must not start one
        OMP_NUM_THREADS="1",
        HF_HOME=str(tmp / "hf-home"),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        PYTHONUNBUFFERED="1",
    )
    return env


@dataclass
class Job:
    """One script run: its argv, the directory it logs into, its environment."""

    name: str
    argv: list[str]
    cwd: Path
    env: dict[str, str]


def python(script: str) -> list[str]:
    return [sys.executable, str(SCRIPTS / script)]


def summaryd_run(script: str) -> list[str]:
    """``summaryd run -- python script`` (``python -m summaryd.daemon`` is the same CLI)."""
    return [sys.executable, "-m", "summaryd.daemon", "run", "--", *python(script)]


def run_jobs(jobs: list[Job], tmp: Path, timeout: float = SCRIPT_TIMEOUT) -> None:
    """Run ``jobs`` concurrently; each must exit 0.

    Each job leads its own process group (Lightning's DDP starts a second
    rank): on failure or timeout the group is killed by its id, so no rank
    outlives the test.  The output of a failed job is in the assertion.
    """
    procs: list[tuple[Job, subprocess.Popen[bytes], Path]] = []
    try:
        for job in jobs:
            job.cwd.mkdir(parents=True, exist_ok=True)
            out = tmp / f"{job.name}.out"
            with open(out, "wb") as f:
                p = subprocess.Popen(
                    job.argv,
                    cwd=job.cwd,
                    env=job.env,
                    stdin=subprocess.DEVNULL,
                    stdout=f,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            procs.append((job, p, out))
        failed = []
        for job, p, out in procs:
            try:
                rc = p.wait(timeout)
            except subprocess.TimeoutExpired:
                rc = None
            if rc != 0:
                tail = out.read_text(errors="replace")[-6000:]
                failed.append(f"{job.name}: exit {rc}\n{tail}")
        assert not failed, "\n\n".join(failed)
    finally:
        for _job, p, _out in procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)  # the job's group: ranks it started too
            except (ProcessLookupError, PermissionError):
                pass
            p.wait()


# -- did the patched run go through summaryd? --------------------------------------------


def event_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and "tfevents" in p.name)


def writer_pids(root: Path) -> set[int | None]:
    """The pid field of every event file name (None: a name without one, tensorboardX's)."""
    out: set[int | None] = set()
    for p in event_files(root):
        m = _PID_FIELD.match(p.name)
        out.add(int(m.group(1)) if m else None)
    return out


def daemon_status(d: DaemonEnv) -> dict[str, Any]:
    """``summaryd status --json`` with the test daemon's environment."""
    r = subprocess.run(
        [sys.executable, "-m", "summaryd.daemon", "status", "--json"],
        env=d.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(r.stdout)  # type: ignore[no-any-return]


def assert_through_summaryd(ref_root: Path, ours_root: Path, d: DaemonEnv) -> dict[str, Any]:
    """summaryd's daemon wrote every event file of the patched tree (its pid is in
    their names) and none of the reference's, no more files per run directory
    than the reference (torch opens one per writer and per life; summaryd's writers
    of one run share a file), and counted records, none malformed or dropped."""
    st = daemon_status(d)
    pid = st["daemon"]["pid"]
    assert pid == d.pid
    assert event_files(ours_root), f"no event files under {ours_root}"
    assert writer_pids(ours_root) == {pid}, (
        f"patched run: event files not named by the daemon (pid {pid}): "
        f"{[p.name for p in event_files(ours_root)]}"
    )
    assert pid not in writer_pids(ref_root), "the reference run went through summaryd"

    def per_dir(root: Path) -> dict[str, int]:
        n: dict[str, int] = {}
        for p in event_files(root):
            rel = rename_time_dirs(str(p.parent.relative_to(root)))
            n[rel] = n.get(rel, 0) + 1
        return n

    ref_n, our_n = per_dir(ref_root), per_dir(ours_root)
    assert all(our_n[k] <= ref_n.get(k, 0) for k in our_n), (
        f"more event files than the reference: reference {ref_n}, summaryd {our_n}"
    )
    totals = st["totals"]
    assert totals["records"] > 0 and totals["malformed"] == 0 and totals["dropped"] == 0, totals
    assert st["daemon"]["file_errors"] == 0, st["daemon"]
    return st


# -- comparing the trees ------------------------------------------------------------------


def rename_time_dirs(rel: str) -> str:
    return _TIME_DIR.sub("<time>", rel)


def hparams_content(ev: event_pb2.Event) -> list[tuple[str, dict[str, Any]]]:
    """The hparams plugin data of ``ev``'s values, decoded (experiment, session start
    info with its hparams, session end info)."""
    out = []
    for v in ev.summary.value:
        data = v.metadata.plugin_data
        if data.plugin_name == "hparams":
            parsed = plugin_data_pb2.HParamsPluginData.FromString(data.content)
            out.append((v.tag, MessageToDict(parsed, preserving_proto_field_name=True)))
    return out


def _canonical(ev: event_pb2.Event, volatile: re.Pattern[str] | None) -> event_pb2.Event:
    """``ev`` with maps (hparams contents, graph node attributes) re-serialized
    deterministically, PNGs decoded to pixels and volatile tags' values masked."""
    from PIL import Image

    out = event_pb2.Event()
    out.CopyFrom(ev)
    if out.HasField("graph_def"):  # NodeDef.attr is a map, serialized in hash order
        out.graph_def = graph_pb2.GraphDef.FromString(out.graph_def).SerializeToString(
            deterministic=True
        )
    for v in out.summary.value:
        data = v.metadata.plugin_data
        if data.plugin_name == "hparams":
            parsed = plugin_data_pb2.HParamsPluginData.FromString(data.content)
            data.content = parsed.SerializeToString(deterministic=True)
        if v.HasField("image"):
            with Image.open(io.BytesIO(v.image.encoded_image_string)) as im:
                v.image.encoded_image_string = im.mode.encode() + b":" + im.tobytes()
        if volatile is not None and volatile.search(v.tag):
            if v.HasField("simple_value"):
                v.simple_value = 0.0
            if v.HasField("tensor"):
                v.tensor.Clear()
    return out


def apply_purges(events: list[event_pb2.Event]) -> list[event_pb2.Event]:
    """What a ``SessionLog.START`` at step R means: events before it at steps >= R
    are superseded (torch leaves them in the file)."""
    out: list[event_pb2.Event] = []
    for e in events:
        if e.HasField("session_log") and e.session_log.status == event_pb2.SessionLog.START:
            out = [o for o in out if not (o.HasField("summary") and o.step >= e.step)]
        out.append(e)
    return out


@dataclass
class Compared:
    """What both trees hold, as read (the reference's)."""

    runs: list[str]  # run directories, time-named ones renamed
    events: dict[str, list[event_pb2.Event]]  # per run, purged, without file_version events
    scalars: dict[str, dict[str, list[tuple[int, float]]]]  # per run: tag -> (step, value)
    hparams: dict[str, list[tuple[str, int, dict[str, Any]]]]  # per run: (tag, step, content)

    def tags(self, run: str) -> set[str]:
        return {v.tag for e in self.events[run] for v in e.summary.value}


def _runs(root: Path, natural_order: bool) -> dict[str, tuple[str, list[event_pb2.Event], int]]:
    """rel (renamed) -> (rel on disk, events in reading order, number of files)."""
    out = {}
    for rel, run in read_tree(root, natural_order=natural_order).items():
        name = rename_time_dirs(rel)
        assert name not in out, f"two runs named {name!r} under {root}"
        out[name] = (rel, [e for evs in run.events for e in evs], len(run.files))
    return out


def _other_files(root: Path) -> dict[str, bytes]:
    return {
        rename_time_dirs(str(p.relative_to(root))): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "tfevents" not in p.name
    }


def assert_logdirs_equal(
    ref_root: Path,
    ours_root: Path,
    clock: Clock,
    *,
    volatile: str | None = None,
    source_writer: bool = True,
) -> Compared:
    """Both trees hold the same runs, events, scalars (as EventAccumulator serves
    them), hparams and other files (``hparams.yaml``...), up to the normalisations
    in this module's docstring; returns the reference's reading.

    ``source_writer=False``: the ``source_metadata`` of the file-version events is
    not compared (tensorboardX writes none; summaryd's daemon writes torch's for
    every run, whichever API its writers use).
    """
    vol = re.compile(volatile) if volatile is not None else None
    ref = _runs(ref_root, natural_order=True)
    ours = _runs(ours_root, natural_order=False)
    assert ref, f"the reference wrote no event files under {ref_root}"
    assert sorted(ours) == sorted(ref), (
        f"run directories differ: reference {sorted(ref)}, summaryd {sorted(ours)}"
    )
    result = Compared(sorted(ref), {}, {}, {})
    for name in sorted(ref):
        views = []
        for (_rel, evs, _n), purge in ((ref[name], True), (ours[name], False)):
            evs = apply_purges(evs) if purge else evs
            heads = {e.file_version for e in evs if e.HasField("file_version")}
            body = [_canonical(e, vol) for e in evs if not e.HasField("file_version")]
            views.append((heads, body))
        (ref_heads, ref_body), (our_heads, our_body) = views
        assert our_heads == ref_heads, f"run {name!r}: file versions {ref_heads} vs {our_heads}"
        _assert_events_equal(
            f"run {name!r} (all events but file_version, in reading order)",
            [normalise(e, clock) for e in ref_body],
            [normalise(e, clock) for e in our_body],
        )
        # What TensorBoard's EventAccumulator serves: scalars and tags.
        acc = [
            accumulator_view(accumulate(root / run[0]), clock)
            for root, run in ((ref_root, ref[name]), (ours_root, ours[name]))
        ]
        result.scalars[name] = {
            tag: [(s, float(v)) for _w, s, v in points] for tag, points in acc[0]["scalars"].items()
        }
        for view in acc:
            for tag, points in view["scalars"].items():
                if vol is not None and vol.search(tag):
                    view["scalars"][tag] = [(w, s, "<volatile>") for w, s, _ in points]
        keys = ["tags", "scalars", "metadata", "file_version"]
        for key in keys + (["source_writer"] if source_writer else []):
            assert acc[1][key] == acc[0][key], (
                f"run {name!r}: EventAccumulator's {key} differ\n"
                f"  reference: {acc[0][key]}\n  summaryd:  {acc[1][key]}"
            )
        result.events[name] = [
            e for e in apply_purges(ref[name][1]) if not e.HasField("file_version")
        ]
        result.hparams[name] = [
            (tag, e.step, content) for e in ref[name][1] for tag, content in hparams_content(e)
        ]
    ref_files, our_files = _other_files(ref_root), _other_files(ours_root)
    assert sorted(our_files) == sorted(ref_files), (
        f"other files differ: reference {sorted(ref_files)}, summaryd {sorted(our_files)}"
    )
    for k in ref_files:
        assert our_files[k] == ref_files[k], f"{k} differs"
    return result
