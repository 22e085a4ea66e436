"""Differential-test helpers: read torch's and summaryd's trees with TensorBoard's readers.

STYLE.md section 11: the same calls through ``torch.utils.tensorboard.SummaryWriter``
and ours, both directories read by TensorBoard (``RawEventFileLoader`` +
``event_pb2.Event``, ``EventAccumulator``), wall time and file names normalised
away, everything else equal.

Wall time: an event whose ``wall_time`` lies inside the test's time window
(from a ``Clock`` taken before the first call to the moment of comparison) was
stamped with "now" by the writer and is compared as ``<live>``; any other wall
time was passed explicitly (tests choose explicit wall times far from now)
and must be equal to the bit.  A writer that ignored an explicit wall time, or
wrote one where the other took "now", shows up as a difference.

Events are compared twice: as ``MessageToDict`` (readable differences) and as
deterministic re-serializations of the parsed, normalised messages (exact:
-0.0, NaN bits, presence of empty sub-messages, unknown fields).
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import pprint
import re
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf.json_format import MessageToDict
from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
from tensorboard.compat.proto import event_pb2

LIVE = "<live>"
_SLACK = 1.0  # seconds either side of the window


@dataclass
class Clock:
    """The time window of a test: live wall times fall inside it."""

    start: float = field(default_factory=time.time)

    def is_live(self, wall_time: float) -> bool:
        return self.start - _SLACK <= wall_time <= time.time() + _SLACK


_NUM = re.compile(r"(\d+)")


def _natural(name: str) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in _NUM.split(name)]


@dataclass
class RunDir:
    files: list[str]  # event file names, in reading order
    events: list[list[event_pb2.Event]]  # per file, in file order


def read_tree(root: Path, *, natural_order: bool = False) -> dict[str, RunDir]:
    """Every directory under ``root`` holding event files, by path relative to ``root``.

    Files are read in name order, as TensorBoard reads a run.  ``natural_order``
    (for torch's trees only) compares the numeric fields of the names as
    numbers: torch's per-process file counter misorders two files created in
    the same second when it crosses a power of ten (``.9`` > ``.10``), a torch
    quirk these tests are not about.
    """
    out: dict[str, RunDir] = {}
    for dirpath, _dirs, names in os.walk(root):
        files = [n for n in names if "tfevents" in n]
        if not files:
            continue
        files.sort(key=_natural if natural_order else None)
        evs = [
            [
                event_pb2.Event.FromString(raw)
                for raw in RawEventFileLoader(os.path.join(dirpath, f)).Load()
            ]
            for f in files
        ]
        rel = os.path.relpath(dirpath, root)
        out[rel.replace(os.sep, "/")] = RunDir(files, evs)
    return out


def normalise(ev: event_pb2.Event, clock: Clock) -> tuple[dict[str, Any], bytes]:
    """(readable dict, exact bytes) of ``ev`` with a live wall time replaced by ``<live>``."""
    e = event_pb2.Event()
    e.CopyFrom(ev)
    live = clock.is_live(ev.wall_time)
    if live:
        e.wall_time = 0.0
    d = MessageToDict(e, preserving_proto_field_name=True)
    d["wall_time"] = LIVE if live else repr(ev.wall_time)
    return d, e.SerializeToString(deterministic=True)


def _show(events: list[tuple[dict[str, Any], bytes]], i: int) -> str:
    if i >= len(events):
        return "<no event>"
    d, b = events[i]
    text = pprint.pformat(d, width=100)
    if len(text) > 1500:
        text = text[:1500] + " ...(truncated)"
    return f"{text}\n    bytes={b.hex() if len(b) < 200 else b[:200].hex() + '...'}"


def _first_difference(
    a: list[tuple[dict[str, Any], bytes]], b: list[tuple[dict[str, Any], bytes]]
) -> int | None:
    for i in range(max(len(a), len(b))):
        if i >= len(a) or i >= len(b) or a[i] != b[i]:
            return i
    return None


def _assert_events_equal(
    what: str,
    ref: list[tuple[dict[str, Any], bytes]],
    ours: list[tuple[dict[str, Any], bytes]],
) -> None:
    i = _first_difference(ref, ours)
    if i is not None:
        raise AssertionError(
            f"{what}: events differ at index {i} (torch has {len(ref)}, summaryd {len(ours)})\n"
            f"  torch:    {_show(ref, i)}\n"
            f"  summaryd: {_show(ours, i)}"
        )


def run_both(
    tmp_path: Path,
    calls: Callable[[Any], None],
    *,
    ignore: Sequence[tuple[str, type[Warning]]] = (),
    printed: list[str] | None = None,
    impls: tuple[Any, Any] | None = None,
    **writer_kwargs: Any,
) -> tuple[Path, Path]:
    """``calls(writer)`` through torch's writer into tmp/torch and summaryd's into tmp/ours.

    ``ignore``: ``(message regex, category)`` warnings both trainers may emit alike
    (numpy's casts), which pytest's ``filterwarnings = error`` would make errors.
    ``printed``: if given, gets what each writer printed (torch prints warnings).
    ``impls``: the (reference, summaryd) writer classes, by default torch's
    ``SummaryWriter`` and ``summaryd.SummaryWriter``; the reference writes tmp/torch.
    """
    if impls is None:
        from torch.utils.tensorboard import SummaryWriter as TorchWriter

        from summaryd import SummaryWriter as OurWriter

        impls = TorchWriter, OurWriter
    roots = tmp_path / "torch", tmp_path / "ours"
    for impl, root in zip(impls, roots, strict=True):
        out = io.StringIO()
        with warnings.catch_warnings(), contextlib.redirect_stdout(out):
            for message, category in ignore:
                warnings.filterwarnings("ignore", message, category)
            w = impl(str(root), **writer_kwargs)
            calls(w)
            w.close()
        if printed is not None:
            printed.append(out.getvalue())
        else:
            print(out.getvalue(), end="")
    return roots


def assert_trees_equal(
    torch_root: Path,
    ours_root: Path,
    clock: Clock,
    *,
    suffix: str | None = None,
    adjust: Callable[[event_pb2.Event], None] | None = None,
) -> tuple[dict[str, RunDir], dict[str, RunDir]]:
    """Both trees hold the same runs, file counts and events (TensorBoard's reading).

    Checked in this order, so a test fails on its most specific difference:
    the set of run directories, the number of event files per run, the events
    after each file's first (the bodies, concatenated in reading order), then
    each file's first event (``file_version`` record), all fields included.
    With ``suffix``, every event file name of both trees must end with it.
    ``adjust`` may change each event of both trees first (to set aside a field
    the caller compares its own way).
    """
    ref = read_tree(torch_root, natural_order=True)
    ours = read_tree(ours_root)
    if adjust is not None:
        for tree in (ref, ours):
            for run in tree.values():
                for evs in run.events:
                    for e in evs:
                        adjust(e)
    assert sorted(ours) == sorted(ref), (
        f"run directories differ: torch {sorted(ref)}, summaryd {sorted(ours)}"
    )
    for rel in sorted(ref):
        assert len(ours[rel].files) == len(ref[rel].files), (
            f"run {rel!r}: torch wrote {len(ref[rel].files)} event files {ref[rel].files}, "
            f"summaryd {len(ours[rel].files)} {ours[rel].files}"
        )
        if suffix is not None:
            for f in ref[rel].files + ours[rel].files:
                assert f.endswith(suffix), f"run {rel!r}: {f!r} does not end with {suffix!r}"
    for rel in sorted(ref):
        for k in range(len(ref[rel].files)):
            assert ref[rel].events[k], f"torch file {ref[rel].files[k]} is empty"
            assert ours[rel].events[k], f"run {rel!r}: summaryd file {ours[rel].files[k]} is empty"
        body_ref = [normalise(e, clock) for evs in ref[rel].events for e in evs[1:]]
        body_ours = [normalise(e, clock) for evs in ours[rel].events for e in evs[1:]]
        _assert_events_equal(f"run {rel!r} (events after each file's first)", body_ref, body_ours)
    for rel in sorted(ref):
        head_ref = [normalise(evs[0], clock) for evs in ref[rel].events]
        head_ours = [normalise(evs[0], clock) for evs in ours[rel].events]
        _assert_events_equal(f"run {rel!r} (first event of each file)", head_ref, head_ours)
    return ref, ours


def events_of(tree: dict[str, RunDir], rel: str = ".") -> list[event_pb2.Event]:
    """All events of one run, files concatenated in reading order."""
    return [e for evs in tree[rel].events for e in evs]


def file_name_pattern(host: str, suffix: str = "") -> re.Pattern[str]:
    """torch's event file name: ``events.out.tfevents.<%010d time>.<host>.<pid>.<n><suffix>``."""
    return re.compile(
        r"events\.out\.tfevents\.\d{10}\." + re.escape(host) + r"\.\d+\.\d+" + re.escape(suffix)
    )


# -- EventAccumulator ----------------------------------------------------------


def accumulate(run_dir: Path) -> Any:
    """TensorBoard's ``EventAccumulator`` over one run directory, everything kept."""
    from tensorboard.backend.event_processing import event_accumulator as ea

    acc = ea.EventAccumulator(
        str(run_dir),
        size_guidance={
            ea.SCALARS: 0,
            ea.TENSORS: 0,
            ea.COMPRESSED_HISTOGRAMS: 0,
            ea.IMAGES: 0,
            ea.AUDIO: 0,
            ea.HISTOGRAMS: 0,
        },
    )
    acc.Reload()
    return acc


def accumulator_view(acc: Any, clock: Clock) -> dict[str, Any]:
    """What TensorBoard's accumulator serves, wall times normalised as above."""

    def wt(t: float) -> str:
        return LIVE if clock.is_live(t) else repr(t)

    def num(v: float) -> str:
        return repr(v) if not math.isnan(v) else "nan"

    tags = acc.Tags()
    view: dict[str, Any] = {
        "tags": {k: sorted(v) if isinstance(v, list) else v for k, v in tags.items()},
        "source_writer": acc.GetSourceWriter(),
        "file_version": acc.file_version,
        "most_recent_step": acc.most_recent_step,
        "scalars": {
            tag: [(wt(s.wall_time), s.step, num(s.value)) for s in acc.Scalars(tag)]
            for tag in sorted(tags.get("scalars", []))
        },
        "tensors": {
            tag: [
                (wt(t.wall_time), t.step, MessageToDict(t.tensor_proto)) for t in acc.Tensors(tag)
            ]
            for tag in sorted(tags.get("tensors", []))
        },
        "metadata": {
            tag: MessageToDict(acc.SummaryMetadata(tag)) for tag in sorted(tags.get("tensors", []))
        },
    }
    return view
