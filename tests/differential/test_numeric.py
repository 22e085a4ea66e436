"""Differential: add_histogram[_raw], add_pr_curve[_raw] and add_tensor, torch vs summaryd.

The same calls through ``torch.utils.tensorboard.SummaryWriter`` (into
``tmp_path/torch``) and ``summaryd.SummaryWriter`` with a real daemon (into
``tmp_path/ours``); both trees are then read by TensorBoard and compared:

* event by event (``compare.py``: live wall times normalised, explicit ones
  equal to the bit, everything else byte-equal after re-serialization);
* as TensorBoard serves them: ``EventAccumulator``'s histograms and
  compressed histograms, its tensors and plugin metadata, and the data
  provider's ``histograms`` and ``pr_curves`` time series (the legacy
  ``histo`` summaries migrated to tensors by ``data_compat``).

Every bad-input case of ``tests/unit/test_convert_numeric.py`` also goes
through both real writers: summaryd raises an instance of what torch raises
and the rejected calls leave no trace.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.tensorboard import SummaryWriter as TorchWriter

from summaryd import SummaryWriter as OurWriter

from ..conftest import DaemonEnv
from ..unit import test_convert_numeric as bad
from .compare import LIVE, Clock, accumulate, accumulator_view, assert_trees_equal
from .compare import run_both as run_both_in_both_writers

pytestmark = [pytest.mark.differential, pytest.mark.integration]

Calls = Callable[[Any], None]

# Explicit wall times, far outside any test's time window (see compare.Clock).
WT = 1_234_567_890.25
WT2 = 1_000_000_000.5


RUNTIME = [  # numpy's casts warn alike in both trainers (NaN predictions, complex values)
    ("invalid value encountered", RuntimeWarning),
    ("", np.exceptions.ComplexWarning),
]


def run_both(tmp_path: Path, calls: Calls) -> tuple[Path, Path]:
    return run_both_in_both_writers(tmp_path, calls, ignore=RUNTIME)


# -- TensorBoard's view ----------------------------------------------------------


def _wt(t: float, clock: Clock) -> str:
    return LIVE if clock.is_live(t) else repr(t)


def _nan_safe(x: Any) -> Any:
    """Lists of floats compared as their reprs (NaN == NaN, -0.0 != 0.0)."""
    return [repr(float(v)) for v in np.asarray(x, dtype=np.float64).reshape(-1)]


def histogram_view(run_dir: Path, clock: Clock) -> dict[str, Any]:
    """``EventAccumulator``'s histograms and compressed histograms, per tag."""
    acc = accumulate(run_dir)
    out: dict[str, Any] = {}
    for tag in sorted(acc.Tags()["histograms"]):
        out[tag] = [
            (
                _wt(h.wall_time, clock),
                h.step,
                _nan_safe(
                    [
                        h.histogram_value.min,
                        h.histogram_value.max,
                        h.histogram_value.num,
                        h.histogram_value.sum,
                    ]
                ),
                _nan_safe(h.histogram_value.bucket_limit),
                _nan_safe(h.histogram_value.bucket),
            )
            for h in acc.Histograms(tag)
        ]
        out[tag + " (compressed)"] = [
            (
                _wt(c.wall_time, clock),
                c.step,
                [(bp, repr(v)) for bp, v in c.compressed_histogram_values],
            )
            for c in acc.CompressedHistograms(tag)
        ]
    return out


def provider_view(run_dir: Path, plugin: str, clock: Clock) -> dict[tuple[str, str], Any]:
    """The data provider's time series for ``plugin``, as the plugin's routes read them."""
    from tensorboard import context as tb_context
    from tensorboard.backend.event_processing import data_provider
    from tensorboard.backend.event_processing import plugin_event_multiplexer as pem

    mux = pem.EventMultiplexer()
    mux.AddRunsFromDirectory(str(run_dir))
    mux.Reload()
    provider = data_provider.MultiplexerDataProvider(mux, str(run_dir))
    ctx = tb_context.RequestContext()
    series = provider.read_tensors(
        ctx, experiment_id="", plugin_name=plugin, downsample=10_000, run_tag_filter=None
    )
    return {
        (run, tag): [
            (_wt(d.wall_time, clock), d.step, d.numpy.shape, _nan_safe(d.numpy)) for d in data
        ]
        for run, by_tag in sorted(series.items())
        for tag, data in sorted(by_tag.items())
    }


def assert_views_equal(tr: Path, ours: Path, clock: Clock, *plugins: str) -> dict[str, Any]:
    ref = {
        "accumulator": accumulator_view(accumulate(tr), clock),
        "histograms": histogram_view(tr, clock),
        **{"provider " + p: provider_view(tr, p, clock) for p in plugins},
    }
    got = {
        "accumulator": accumulator_view(accumulate(ours), clock),
        "histograms": histogram_view(ours, clock),
        **{"provider " + p: provider_view(ours, p, clock) for p in plugins},
    }
    for key in ref:
        assert got[key] == ref[key], key
    return ref


# ``sum_squares`` is ``values.dot(values)`` (BLAS ddot) in both writers, and ddot's
# last bits depend on how many BLAS threads split the sum: torch computes it with
# the trainer's thread count, the daemon with one (see ``loop.serve``), and no
# daemon can know a trainer's.  TensorBoard shows no sum_squares; it is compared
# to 1e-12 relative, and every other field exactly.
SUM_SQUARES_RTOL = 1e-12


def _sum_squares(tree: Path) -> list[tuple[str, str, int, float]]:
    from .compare import read_tree

    return [
        (rel, v.tag, e.step, v.histo.sum_squares)
        for rel, run in sorted(read_tree(tree).items())
        for evs in run.events
        for e in evs
        for v in e.summary.value
        if v.HasField("histo")
    ]


def _set_sum_squares_aside(e: Any) -> None:
    for v in e.summary.value:
        if v.HasField("histo"):
            v.histo.sum_squares = 0.0


def compare(tmp_path: Path, calls: Calls, *plugins: str) -> dict[str, Any]:
    clock = Clock()
    tr, ours = run_both(tmp_path, calls)
    ref_sq, our_sq = _sum_squares(tr), _sum_squares(ours)
    assert [k[:3] for k in our_sq] == [k[:3] for k in ref_sq]
    for (rel, tag, step, a), (_, _, _, b) in zip(ref_sq, our_sq, strict=True):
        same = a == b or math.isnan(a) and math.isnan(b)
        assert same or math.isclose(a, b, rel_tol=SUM_SQUARES_RTOL), (rel, tag, step, a, b)
    assert_trees_equal(tr, ours, clock, adjust=_set_sum_squares_aside)
    return assert_views_equal(tr, ours, clock, *plugins)


# -- histograms ------------------------------------------------------------------

_rng = np.random.default_rng(3)


def test_histograms(shared_daemon: DaemonEnv, tmp_path: Path) -> None:
    normal = _rng.standard_normal(5000)

    def calls(w: Any) -> None:
        w.add_histogram("default/f32", normal.astype(np.float32), 0)
        w.add_histogram("default/f32", normal.astype(np.float32) + 1, 1, walltime=WT)
        w.add_histogram("default/torch", torch.from_numpy(normal).reshape(50, 100), 2)
        w.add_histogram("default/bf16", torch.from_numpy(normal).bfloat16(), 2)
        w.add_histogram("default/ints", np.arange(-20, 300), 3)
        w.add_histogram("default/bool", np.array([True, False, False]), 3)
        w.add_histogram("default/scalar", 3.5, 4)
        w.add_histogram("default/nan-first", np.array([np.nan, -np.inf, 1.0, -0.0, 1e30]), 5)
        w.add_histogram("default/max_bins", normal * 1e-3, 6, max_bins=30)
        w.add_histogram("default/one-bin", np.array([np.nan]), 6, max_bins=1)
        for i, est in enumerate(["auto", "fd", "doane", "scott", "stone", "rice", "sturges"]):
            w.add_histogram("estimator/" + est, normal[:500], i, bins=est, walltime=WT2 + i)
        w.add_histogram("estimator/sqrt", normal, 7, bins="sqrt", max_bins=7)
        w.add_histogram("count", normal, 8, bins=17, max_bins=np.int64(4))
        w.add_histogram("edges/list", normal, 9, bins=[-1.0, 0.0, 0.5, 3.0])
        w.add_histogram("edges/ints", np.arange(20), 9, bins=np.array([0, 5, 5, 10, 30]))
        w.add_histogram("edges/tensor", normal, 9, bins=torch.linspace(-2, 2, 9))
        w.add_histogram("edges/one-empty-bin", normal, 9, bins=[100.0, 200.0])

    ref = compare(tmp_path, calls, "histograms")
    assert len(ref["histograms"]) == 2 * 22 and len(ref["provider histograms"]) == 22
    assert ref["histograms"]["default/f32"][1][0] == repr(WT)


def test_histogram_of_a_million_values(shared_daemon: DaemonEnv, tmp_path: Path) -> None:
    """Records of 4 and 8 MB (beyond a quarter ring: blobs), on both counting paths."""
    x = _rng.standard_normal(1_000_000).astype(np.float32)

    def calls(w: Any) -> None:
        w.add_histogram("big/f32", x, 0)
        w.add_histogram("big/f64", x.astype(np.float64) * 1e6, 1)
        w.add_histogram("big/torch", torch.from_numpy(x), 2, max_bins=100)

    compare(tmp_path, calls, "histograms")


def test_histogram_raw(shared_daemon: DaemonEnv, tmp_path: Path) -> None:
    def calls(w: Any) -> None:
        data = np.repeat(np.arange(50.0) + 0.001, np.arange(50))
        counts, limits = np.histogram(data, bins=np.arange(52.0))
        w.add_histogram_raw(
            "raw/doc",
            min=data.min(),
            max=data.max(),
            num=len(data),
            sum=data.sum(),
            sum_squares=data.dot(data),
            bucket_limits=limits[1:].tolist(),
            bucket_counts=counts.tolist(),
            global_step=0,
        )
        w.add_histogram_raw(
            "raw/tensors",
            torch.tensor(0.5),
            np.float32(9.5),
            3,
            None,
            -0.0,
            torch.tensor([1.0, 5.0, 10.0]),
            np.array([1, 0, 2], np.uint8),
            1,
            walltime=WT,
        )
        w.add_histogram_raw("raw/empty", 0, 0, 0, 0, 0, [], [], 2)

    compare(tmp_path, calls, "histograms")


# -- PR curves -------------------------------------------------------------------


def test_pr_curves(shared_daemon: DaemonEnv, tmp_path: Path) -> None:
    labels = _rng.integers(0, 2, 300)
    preds = _rng.random(300)
    weights = _rng.random(300)

    def calls(w: Any) -> None:
        w.add_pr_curve("pr/default", labels, preds, 0)
        w.add_pr_curve("pr/default", labels, preds**2, 1, walltime=WT)
        w.add_pr_curve("pr/f32", torch.from_numpy(labels), torch.from_numpy(preds).float(), 2)
        w.add_pr_curve("pr/few", labels, preds, 3, num_thresholds=7)
        w.add_pr_curve("pr/capped", labels, preds, 4, num_thresholds=1000)
        w.add_pr_curve("pr/np-int", labels, preds.astype(np.float32), 5, num_thresholds=np.int64(9))
        w.add_pr_curve("pr/weights", labels, preds, 6, weights=weights)
        w.add_pr_curve("pr/scalar-weight", labels, preds, 6, weights=0.25)
        w.add_pr_curve("pr/2d", labels.reshape(15, 20), preds.reshape(15, 20), 7)
        nan = preds.copy()
        nan[:5] = [np.nan, np.inf, -1, 2, 1]
        w.add_pr_curve("pr/out-of-range", labels, nan, 8)
        w.add_pr_curve("pr/uint8", labels, (preds * 3).astype(np.uint8), 9)
        w.add_pr_curve("pr/empty", np.array([]), np.array([]), 10)

    ref = compare(tmp_path, calls, "pr_curves")
    assert len(ref["provider pr_curves"]) == 11  # pr/default twice


def test_pr_curve_raw(shared_daemon: DaemonEnv, tmp_path: Path) -> None:
    c = np.linspace(0, 1, 11)

    def calls(w: Any) -> None:
        w.add_pr_curve_raw("raw/np", c * 10, c * 5, c[::-1], c, c, c[::-1], 0, num_thresholds=11)
        w.add_pr_curve_raw("raw/lists", *([[3, 2, 1]] * 6), 1, walltime=WT)
        w.add_pr_curve_raw("raw/tensors", *([torch.ones(4)] * 6), 2, num_thresholds=4)
        w.add_pr_curve_raw("raw/capped", *([c] * 6), 3, num_thresholds=10**6, weights="unused")

    compare(tmp_path, calls, "pr_curves")


def test_pr_curve_raw_2d_written_as_torch(shared_daemon: DaemonEnv, tmp_path: Path) -> None:
    """2-d counts: torch writes shape [6, rows] over all 6 * rows * cols values, a tensor
    TensorBoard cannot reshape; summaryd writes the same bytes (no view to compare)."""

    def calls(w: Any) -> None:
        w.add_pr_curve_raw("raw/2d", *([np.ones((2, 3))] * 6), 4)

    clock = Clock()
    assert_trees_equal(*run_both(tmp_path, calls), clock)


# -- tensors ---------------------------------------------------------------------


def test_tensors(shared_daemon: DaemonEnv, tmp_path: Path) -> None:
    def calls(w: Any) -> None:
        w.add_tensor("t/f32", torch.randn(3, 4, generator=torch.Generator().manual_seed(0)), 0)
        w.add_tensor("t/f32", torch.tensor(3.5), 1, walltime=WT)
        w.add_tensor("t/f64", torch.tensor([1.0, -0.0, float("nan")], dtype=torch.float64), 2)
        w.add_tensor("t/f16", torch.tensor([1.5, float("inf"), 6e-8], dtype=torch.float16), 3)
        w.add_tensor("t/bf16", torch.tensor([1.5, -2.0, 3e38], dtype=torch.bfloat16), 3)
        w.add_tensor("t/c64", torch.tensor([1 + 2j, -0.5j]), 4)
        w.add_tensor("t/c128", torch.tensor([[1 + 2j]], dtype=torch.complex128), 4)
        w.add_tensor("t/u8", torch.tensor([0, 255], dtype=torch.uint8), 5)
        w.add_tensor("t/i8", torch.tensor([-128, 127], dtype=torch.int8), 5)
        w.add_tensor("t/i16", torch.tensor([-(2**15)], dtype=torch.int16), 5)
        w.add_tensor("t/i32", torch.tensor([2**31 - 1], dtype=torch.int32), 5)
        w.add_tensor("t/i64", torch.tensor([-(2**63), 2**63 - 1]), 5)
        w.add_tensor("t/bool", torch.tensor([[True, False]]), 6)
        w.add_tensor("t/empty", torch.zeros(0, 3), 7)
        w.add_tensor("t/view", torch.arange(12.0).reshape(3, 4).t()[1:], 8)
        w.add_tensor("t/grad", torch.ones(2, requires_grad=True), 9)
        w.add_tensor("t/big", torch.arange(20_000, dtype=torch.float32), 10)

    ref = compare(tmp_path, calls)
    assert len(ref["accumulator"]["tensors"]) == 16


# -- bad input -------------------------------------------------------------------


def _bad_calls() -> list[tuple[str, Calls]]:
    out: list[tuple[str, Calls]] = []
    for name, (values, bins, max_bins, _) in bad.BAD_HISTOGRAMS.items():
        out.append(
            (
                "histogram: " + name,
                lambda w, v=values, b=bins, m=max_bins: w.add_histogram("h", v, 1, b, max_bins=m),
            )
        )
    for name, (args, _) in bad.BAD_HISTOGRAM_RAW.items():
        out.append(("histogram_raw: " + name, lambda w, a=args: w.add_histogram_raw("r", *a)))
    for name, (labels, preds, nt, weights, _) in bad.BAD_PR_CURVES.items():
        out.append(
            (
                "pr_curve: " + name,
                lambda w, lb=labels, p=preds, n=nt, wt=weights: w.add_pr_curve(
                    "p", lb, p, 1, num_thresholds=n, weights=wt
                ),
            )
        )
    for name, (counts, nt, _) in bad.BAD_PR_CURVE_RAW.items():
        out.append(
            (
                "pr_curve_raw: " + name,
                lambda w, c=counts, n=nt: w.add_pr_curve_raw("q", *c, 1, num_thresholds=n),
            )
        )
    for name, make in bad.BAD_TENSORS.items():
        out.append(("tensor: " + name, lambda w, m=make: w.add_tensor("t", m(), 1)))
    return out


def test_bad_input_through_the_writers(shared_daemon: DaemonEnv, tmp_path: Path) -> None:
    """Every bad-input case of test_convert_numeric through both real writers: summaryd
    raises an instance of what torch raises, and the rejected calls leave no trace."""
    clock = Clock()
    writers = TorchWriter(str(tmp_path / "torch")), OurWriter(str(tmp_path / "ours"))
    mismatches = []
    try:
        for w in writers:
            w.add_histogram("good", np.arange(5.0), 0)
        for name, call in _bad_calls():
            excs: list[BaseException | None] = []
            for w in writers:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    try:
                        call(w)
                        excs.append(None)
                    except Exception as exc:
                        excs.append(exc)
            torch_exc, ours_exc = excs
            assert torch_exc is not None, f"{name}: torch accepted it"
            base = next(c for c in type(torch_exc).__mro__ if c.__module__ == "builtins")
            if not isinstance(ours_exc, base):
                mismatches.append((name, repr(torch_exc), repr(ours_exc)))
        for w in writers:
            w.add_histogram("good", np.arange(5.0), 1)
    finally:
        for w in writers:
            w.close()
    assert not mismatches, mismatches
    assert_trees_equal(tmp_path / "torch", tmp_path / "ours", clock)
