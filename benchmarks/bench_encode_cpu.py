#!/usr/bin/env python
"""The daemon's CPU per media item, beside torch's for the same summary, in one process.

    python benchmarks/bench_encode_cpu.py [-n CALLS] [--cases image_noise,hist_normal,...]
                                          [--stages] [--json out.json]

Each case times ``daemon.encode.array_record(rec, data)`` — the whole of what the
daemon's encoder does with one array record: decode the arrays, encode the summary,
wrap it in an Event, serialize and frame it — and torch 2.13's
``torch.utils.tensorboard.summary.image`` / ``summary.histogram`` for the same
input (the Summary torch's writer builds in the trainer before it queues the event),
both with ``time.process_time`` around one call, single thread (BLAS limited to one
thread for both, as the daemon does), median and p90 over ``-n`` calls after a
warm-up.  The daemon's ``mallopt`` setting (``loop._keep_freed_memory``) is applied,
so freed MB-sized buffers are reused as in the daemon.  ``torch / summaryd`` is the
ratio of the medians.

``--stages`` also times the encoder's parts on the same input (layout and scaling,
PNG filter + deflate; the float32 pass of ``buckets.py`` and its buckets alone,
and torch's float64 statistics for comparison) to show where the time goes.

Cases: 3x512x512 float32 images (uniform noise as ``torch.rand`` makes it, a
photo — matplotlib's sample ``grace_hopper.jpg`` scaled to 512x512 —, a smooth
gradient, and ``bench_media.py``'s image: gradients plus noise of ~5 grey
levels), 16x3x64x64 float32 ``add_images`` (noise), and histograms of 1e6
float32 values (normal, uniform, and normal with 1 % NaN and +-inf, which torch
accepts and does not count) with TensorBoard's default buckets
(``bins="tensorflow"``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
from bench_media import make_image  # noqa: E402  (beside this script)
from machine import describe  # noqa: E402


def _photo() -> np.ndarray:
    """matplotlib's sample photo as 3x512x512 float32 in [0, 1] (blurred noise without it)."""
    try:
        import matplotlib
        from PIL import Image

        path = Path(matplotlib.__file__).parent / "mpl-data/sample_data/grace_hopper.jpg"
        with Image.open(path) as im:
            hwc = np.asarray(im.convert("RGB").resize((512, 512), Image.Resampling.BILINEAR))
        return np.ascontiguousarray(hwc.transpose(2, 0, 1), np.float32) / np.float32(255)
    except (ImportError, OSError):  # pragma: no cover - depends on the installation
        rng = np.random.default_rng(1)
        x = rng.random((3, 512, 512))
        for _ in range(4):
            x = (x + np.roll(x, 1, 1) + np.roll(x, -1, 1) + np.roll(x, 1, 2)) / 4
        return ((x - x.min()) / np.ptp(x)).astype(np.float32)


def inputs() -> dict[str, tuple[str, np.ndarray]]:
    """case -> (kind, array): what the trainer passes to add_image / add_images / add_histogram."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:512, 0:512].astype(np.float32) / np.float32(511)
    normal = rng.standard_normal(1_000_000, dtype=np.float32)
    odd = normal.copy()
    where = rng.choice(odd.size, 30_000, replace=False)
    odd[where[:10_000]] = np.nan
    odd[where[10_000:20_000]] = np.inf
    odd[where[20_000:]] = -np.inf
    return {
        "image_noise": ("image", rng.random((3, 512, 512), dtype=np.float32)),
        "image_photo": ("image", _photo()),
        "image_smooth": ("image", np.stack([x, y, (x + y) / 2])),
        "image_bench_media": ("image", make_image(np.random.default_rng(0), 512, 512)),
        "images_16": ("images", rng.random((16, 3, 64, 64), dtype=np.float32)),
        "hist_normal": ("histogram", normal),
        "hist_uniform": ("histogram", rng.random(1_000_000, dtype=np.float32)),
        "hist_nonfinite": ("histogram", odd),
    }


def ours(kind: str, a: np.ndarray) -> Callable[[], Any]:
    """One call of the daemon's encoder on the array record the SDK would send."""
    from summaryd import wire
    from summaryd.daemon import encode

    code, params = {
        "image": (wire.IMAGE, {"dataformats": "CHW"}),
        "images": (wire.IMAGES, {"dataformats": "NCHW"}),
        "histogram": (wire.HISTOGRAM, {"bins": "tensorflow", "max_bins": None}),
    }[kind]
    rec = [code, 1, "tag", 7, 1.5, params, [[a.dtype.str, list(a.shape)]], None]
    data = memoryview(a.tobytes())  # read-only, as a ring's view is
    return lambda: encode.array_record(rec, data)


def theirs(kind: str, a: np.ndarray) -> Callable[[], Any]:
    """torch's summary for the same call (as ``SummaryWriter.add_*`` builds it)."""
    import torch
    from torch.utils.tensorboard import summary

    from summaryd.limits import tensorflow_bins

    t = torch.from_numpy(a)
    if kind == "image":
        return lambda: summary.image("tag", t, dataformats="CHW")
    if kind == "images":
        return lambda: summary.image("tag", t, dataformats="NCHW")
    bins = tensorflow_bins()  # SummaryWriter.default_bins, as add_histogram passes them
    return lambda: summary.histogram("tag", a, bins)


def stages(kind: str, a: np.ndarray) -> dict[str, Callable[[], Any]]:
    """The encoder's parts, each timed alone on the same input."""
    from summaryd.daemon import buckets, encode_image, media

    if kind in ("image", "images"):
        fmt = "CHW" if kind == "image" else "NCHW"
        hwc = encode_image.pixels_hwc(a, fmt)
        return {
            "pixels_hwc (scale + layout)": lambda: encode_image.pixels_hwc(a, fmt),
            "media.png": lambda: media.png(hwc),
        }
    f64 = a.astype(np.float64)
    return {
        "float32 pass (buckets.float32_stats)": lambda: buckets.float32_stats(a),
        "  of which the buckets alone": lambda: buckets.tensorflow_counts(a),
        "torch's way: astype(float64)": lambda: a.astype(np.float64),
        "torch's way: sum + dot + min + max": lambda: (
            f64.sum(),
            f64.dot(f64),
            f64.min(),
            f64.max(),
        ),
    }


def cpu_ms(fn: Callable[[], Any], n: int) -> tuple[float, float]:
    """(median, p90) process CPU ms of one call, over ``n`` calls after a warm-up."""
    for _ in range(max(2, n // 10)):
        fn()
    times = []
    gc.disable()
    try:
        for _ in range(n):
            t0 = time.process_time()
            fn()
            times.append((time.process_time() - t0) * 1e3)
    finally:
        gc.enable()
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.9 * len(times)))]


def main() -> int:
    """Run the cases and print the table (and write JSON when asked)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-n", type=int, default=40, help="calls per case and writer (default 40)")
    p.add_argument("--cases", default="", help="comma-separated case names (default: all)")
    p.add_argument("--stages", action="store_true", help="also time the encoder's parts")
    p.add_argument("--json", type=Path, help="write the figures here as JSON")
    args = p.parse_args()

    import threadpoolctl
    import torch

    from summaryd.daemon import buckets, loop

    loop._keep_freed_memory()  # the daemon's malloc setting
    threadpoolctl.threadpool_limits(1)  # the daemon's BLAS setting; torch's alike
    torch.set_num_threads(1)

    cases = inputs()
    chosen = [c for c in args.cases.split(",") if c] or list(cases)
    from importlib.util import find_spec

    optional = ("isal",) if find_spec("isal") else ()
    print(describe(("numpy", "torch", "zlib-ng", *optional, "protobuf")))
    print(f"C bucket loop: {'yes' if buckets.COMPILED else 'no (numpy)'}")
    print(f"pid {os.getpid()}, {args.n} calls per case, process CPU ms per call\n")
    head = f"{'case':16s} {'summaryd p50':>12s} {'p90':>7s} {'torch p50':>10s} {'p90':>7s}"
    print(f"{head} {'torch/summaryd':>15s}")
    out: dict[str, Any] = {}
    for name in chosen:
        kind, a = cases[name]
        ours_p50, ours_p90 = cpu_ms(ours(kind, a), args.n)
        try:
            torch_p50, torch_p90 = cpu_ms(theirs(kind, a), max(5, args.n // 4))
        except Exception as exc:  # noqa: BLE001 - a case torch refuses is reported, not fatal
            print(f"{name:16s} {ours_p50:12.2f} {ours_p90:7.2f}   torch raised {exc!r}")
            out[name] = {"summaryd": [ours_p50, ours_p90], "torch": None}
            continue
        ratio = torch_p50 / ours_p50
        print(
            f"{name:16s} {ours_p50:12.2f} {ours_p90:7.2f} {torch_p50:10.2f} {torch_p90:7.2f} "
            f"{ratio:14.1f}x"
        )
        out[name] = {"summaryd": [ours_p50, ours_p90], "torch": [torch_p50, torch_p90]}
        if args.stages:
            for stage, fn in stages(kind, a).items():
                s50, s90 = cpu_ms(fn, args.n)
                print(f"  {stage:36s} {s50:7.2f} {s90:7.2f}")
                out[name][stage] = [s50, s90]
    print(f"\nload after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
