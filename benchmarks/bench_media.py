#!/usr/bin/env python
"""Media logging: summaryd vs torch.utils.tensorboard vs tensorboardX, in one run.

    python benchmarks/bench_media.py [--quick] [--json out.json] [--only calls|keepup]
                                     [--cases image,audio,...] [--seconds S]

Two benchmarks (see README.md, section "Media"):

1. calls   trainer-side time of one ``add_histogram`` / ``add_image`` / ``add_images`` /
           ``add_audio`` / ``add_embedding`` / ``add_pr_curve`` / ``add_video`` /
           ``add_figure`` call: ``time.perf_counter`` and ``time.process_time`` around
           the call only, median and p90 over many calls after a warm-up.  Each writer
           runs in its own fresh interpreter; between two calls (outside the timed
           region) the writer is settled: every event of the call is in its file, so
           a call never competes with the previous call's background work.  That
           background work is reported on its own (process CPU up to the settle; for
           summaryd the daemon's CPU per call).
2. keepup  P = 4 processes each log one 3x512x512 float32 image and one 1e6-float32
           histogram per step at 20 steps/s into one summaryd daemon: did a ring ever
           fill, did an ``add_*`` call wait, what does the daemon spend per image and
           per histogram (also image-only and histogram-only runs), and did every event
           arrive (read back with TensorBoard's ``RawEventFileLoader``).

summaryd runs against its own daemon (``isolated_daemon.IsolatedDaemon``): a private
runtime dir and ring prefix, stopped by PID, rings and temp dirs removed whatever happens.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import gc
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench_scalars import _fmt, _table, machine  # beside this script
from isolated_daemon import IsolatedDaemon
from machine import remove_scratch, tree_cpu, tree_rss

HERE = Path(__file__).resolve()
WRITERS = ("summaryd", "torch", "tensorboardX")

# name, method, input, target (torch ÷ summaryd, median wall), torch reference ms
CASES: list[tuple[str, str, str, float | None, float | None]] = [
    ("hist_np", "add_histogram", "1e6 float32, numpy", 20, 9),
    ("hist_torch", "add_histogram", "1e6 float32, torch", 20, 9),
    ("image", "add_image", "3x512x512 float32 tensor", 100, 126),
    ("images", "add_images", "16x3x64x64 float32 tensor", 20, 36),
    ("audio", "add_audio", "1x44100 float32 (1 s, 44.1 kHz)", 100, 12),
    ("embedding", "add_embedding", "1000x64 float32, new step per call", 20, 69),
    ("pr_curve", "add_pr_curve", "10k labels + predictions", None, 0.9),
    ("video", "add_video", "1x16x3x64x64 float32, fps 4", None, None),
    ("figure", "add_figure", "matplotlib 4x3 in, 100 dpi, 2 lines", None, None),
]
FULL = {
    "warmup": 3,
    "min_reps": 30,
    "max_reps": 200,
    "budget_s": 5.0,
    "procs": 4,
    "rate": 20.0,
    "seconds": 15.0,
}
QUICK = {
    "warmup": 2,
    "min_reps": 8,
    "max_reps": 40,
    "budget_s": 1.0,
    "procs": 4,
    "rate": 20.0,
    "seconds": 4.0,
}
VARIANTS = {
    "image+histogram": ("image", "hist"),
    "image only": ("image",),
    "histogram only": ("hist",),
}


# =============================================================================
# inputs (worker side)
# =============================================================================


def make_image(rng: Any, h: int, w: int) -> Any:
    """A float32 CHW image in [0, 1] that compresses like a photo, not like noise:
    per channel a smooth sinusoidal gradient and a Gaussian blob, plus Gaussian
    noise of sigma 0.02 (about 5 of 255 grey levels), clipped."""
    import numpy as np

    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    y /= h
    x /= w
    chans = []
    for _ in range(3):
        fx, fy, ph = rng.uniform(0.3, 2.0), rng.uniform(0.3, 2.0), rng.uniform(0, 6.3)
        cx, cy, s = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.05, 0.2)
        c = 0.45 + 0.3 * np.sin(2 * np.pi * (fx * x + fy * y) + ph)
        c += 0.25 * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * s * s))
        chans.append(c)
    img = np.stack(chans) + rng.normal(0.0, 0.02, (3, h, w))
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def make_inputs() -> dict[str, Any]:
    import numpy as np
    import torch

    rng = np.random.default_rng(0)
    t = np.arange(44_100, dtype=np.float32) / 44_100
    labels = rng.integers(0, 2, 10_000)
    return {
        "hist_np": rng.standard_normal(1_000_000).astype(np.float32),
        "hist_torch": torch.from_numpy(rng.standard_normal(1_000_000).astype(np.float32)),
        "image": torch.from_numpy(make_image(rng, 512, 512)),
        "images": torch.from_numpy(np.stack([make_image(rng, 64, 64) for _ in range(16)])),
        "audio": torch.from_numpy(
            (0.5 * np.sin(2 * np.pi * 440 * t) + rng.normal(0, 0.01, t.size))
            .astype(np.float32)
            .reshape(1, -1)
        ),
        "embedding": torch.from_numpy(rng.standard_normal((1000, 64)).astype(np.float32)),
        "pr_labels": torch.from_numpy(labels),
        "pr_pred": torch.from_numpy(
            np.clip(0.35 * labels + rng.uniform(0, 0.65, labels.size), 0, 1).astype(np.float32)
        ),
        "video": torch.from_numpy(np.stack([make_image(rng, 64, 64) for _ in range(16)])[None]),
    }


def small_figure() -> Any:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3), dpi=100)
    xs = [i / 50 for i in range(200)]
    ax.plot(xs, [x * x % 1.3 for x in xs], label="a")
    ax.plot(xs, [(x * 7) % 1.1 for x in xs], label="b")
    ax.legend()
    ax.set_title("loss")
    return fig


def prepare(name: str, w: Any, inp: dict[str, Any], i: int) -> Callable[[], None]:
    """The call number ``i`` of case ``name``, its arguments made beforehand (untimed)."""
    tag = f"bench/{name}"
    if name in ("hist_np", "hist_torch"):
        return lambda: w.add_histogram(tag, inp[name], i)
    if name == "image":
        return lambda: w.add_image(tag, inp["image"], i)
    if name == "images":
        return lambda: w.add_images(tag, inp["images"], i)
    if name == "audio":
        return lambda: w.add_audio(tag, inp["audio"], i, sample_rate=44_100)
    if name == "embedding":  # a distinct global_step per call: a new projector dir each
        return lambda: w.add_embedding(inp["embedding"], global_step=i, tag="bench")
    if name == "pr_curve":
        return lambda: w.add_pr_curve(tag, inp["pr_labels"], inp["pr_pred"], i)
    if name == "video":
        return lambda: w.add_video(tag, inp["video"], i, fps=4)
    if name == "figure":
        fig = small_figure()
        return lambda: w.add_figure(tag, fig, i)
    raise ValueError(name)


# =============================================================================
# worker side: runs in a fresh interpreter, prints one JSON line on stdout
# =============================================================================


def make_writer(kind: str, log_dir: str) -> tuple[Any, Callable[[], None]]:
    """The writer and its settle(): returns once every event logged so far is written."""
    if kind == "summaryd":
        from summaryd import SummaryWriter

        w = SummaryWriter(log_dir)
        return w, w.flush  # the daemon acknowledged: every record is in its file
    if kind == "torch":
        from torch.utils.tensorboard import SummaryWriter as TorchWriter

        w = TorchWriter(log_dir)
        return w, w.flush  # joins the writer thread's queue, then flushes the file
    from tensorboardX import SummaryWriter as TbxWriter

    w = TbxWriter(log_dir)
    # tensorboardX's flush() does not wait for its writer thread (it flushes the file
    # only), so count events handed to the thread and events it wrote, and wait.
    ew = w._get_file_writer().event_writer
    counts = [0, 0]
    add, write = ew.add_event, ew._ev_writer.write_event

    def counted_add(event: Any) -> None:
        counts[0] += 1
        add(event)

    def counted_write(event: Any) -> Any:
        r = write(event)
        counts[1] += 1
        return r

    ew.add_event = counted_add
    ew._ev_writer.write_event = counted_write

    def settle() -> None:
        deadline = time.monotonic() + 120
        while counts[1] < counts[0] and time.monotonic() < deadline:
            time.sleep(0.0005)  # polls a counter the writer thread bumps
        w.flush()

    return w, settle


def _pct(v: list[float], q: float) -> float:
    s = sorted(v)
    return s[min(len(s) - 1, int(q * len(s)))]


def worker_calls(a: argparse.Namespace) -> dict[str, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401  (imported before any timed call)
    import psutil

    inp = make_inputs()
    w, settle = make_writer(a.writer, a.log_dir)
    daemon = psutil.Process(a.daemon_pid) if a.daemon_pid else None
    results = []
    step = [0]  # global steps never repeat across cases (embedding dirs are per step)
    for name, method, *_ in CASES:
        if a.cases and name not in a.cases.split(","):
            continue
        res: dict[str, Any] = {"case": name, "method": method, "error": None, "calls": 0}
        gc.collect()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                res.update(_time_case(a, name, w, settle, inp, step, daemon))
            except Exception as exc:  # noqa: BLE001  (an unfinished method is a row "n/a")
                first = str(exc).splitlines()[0] if str(exc) else ""
                res["error"] = f"{type(exc).__name__}: {first}"
        res["notices"] = sorted({str(x.message)[:200] for x in caught})[:3]
        results.append(res)
        print(f"  {a.writer} {name}: {res.get('wall_p50', res['error'])}", file=sys.stderr)
    w.close()
    return {"writer": a.writer, "cases": results}


def _time_case(
    a: argparse.Namespace,
    name: str,
    w: Any,
    settle: Callable[[], None],
    inp: dict[str, Any],
    step: list[int],
    daemon: Any,
) -> dict[str, Any]:
    """Warm-up, then the isolated calls (settled after each), then as many back-to-back."""
    pc, pt = time.perf_counter, time.process_time
    for _ in range(a.warmup):
        prepare(name, w, inp, step[0])()
        step[0] += 1
        settle()
    wall: list[float] = []
    cpu: list[float] = []
    cpu_bg: list[float] = []
    d0 = tree_cpu(daemon) if daemon else None
    t_start = pc()
    while True:
        call = prepare(name, w, inp, step[0])
        c0 = pt()
        t0 = pc()
        call()
        t1 = pc()
        c1 = pt()
        step[0] += 1
        settle()
        c2 = pt()
        wall.append(t1 - t0)
        cpu.append(c1 - c0)
        cpu_bg.append(c2 - c0)
        n = len(wall)
        if n >= a.max_reps or (n >= a.min_reps and pc() - t_start > a.budget_s):
            break
    d1 = tree_cpu(daemon) if daemon else None
    # Back-to-back: the same number of calls with nothing in between (a figure is
    # still made before each, untimed): the call now also meets the previous calls'
    # work (torch's writer thread holding the GIL, a full queue, a full ring).
    b_wall: list[float] = []
    b_cpu: list[float] = []
    t_b = 0.0
    for _ in range(n):
        call = prepare(name, w, inp, step[0])
        c0 = pt()
        t0 = pc()
        call()
        t1 = pc()
        c1 = pt()
        step[0] += 1
        b_wall.append(t1 - t0)
        b_cpu.append(c1 - c0)
        t_b += t1 - t0
    t0 = pc()
    settle()
    t_b += pc() - t0
    ms = 1e3
    out = {
        "warmup": a.warmup,
        "calls": n,
        "wall_p50": statistics.median(wall) * ms,
        "wall_p90": _pct(wall, 0.9) * ms,
        "cpu_p50": statistics.median(cpu) * ms,
        "cpu_p90": _pct(cpu, 0.9) * ms,
        "cpu_bg_p50": statistics.median(cpu_bg) * ms,
        "b2b_wall_p50": statistics.median(b_wall) * ms,
        "b2b_wall_p90": _pct(b_wall, 0.9) * ms,
        "b2b_cpu_p50": statistics.median(b_cpu) * ms,
        "b2b_cpu_p90": _pct(b_cpu, 0.9) * ms,
        # (time in the calls + the final settle) / calls: the sustained cost per call
        "b2b_sustained": t_b / n * ms,
    }
    if d0 is not None and d1 is not None:
        out["daemon_cpu_ms"] = (d1 - d0) / n * ms
    return out


def worker_keepup(a: argparse.Namespace) -> dict[str, Any]:
    """Log at a fixed rate after a barrier; every call timed, ring fill sampled after it."""
    import numpy as np

    from summaryd import SummaryWriter, client

    kinds = a.kinds.split(",")
    rng = np.random.default_rng(100 + a.rank)
    images = [make_image(rng, 512, 512) for _ in range(6)] if "image" in kinds else []
    hists = (
        [(rng.standard_normal(1_000_000) * (1 + 0.2 * i) + i).astype(np.float32) for i in range(4)]
        if "hist" in kinds
        else []
    )
    w = SummaryWriter(a.log_dir)
    c = client.get_client()  # the writer's client: its ring and statistics
    waits: list[float] = []
    wait_for_space = c._wait_for_space

    def timed_wait(try_put: Any) -> None:  # entered only when the ring is full
        t = time.perf_counter()
        try:
            wait_for_space(try_put)
        finally:
            waits.append(time.perf_counter() - t)

    c._wait_for_space = timed_wait
    lat: dict[str, list[float]] = {k: [] for k in kinds}
    max_fill = 0
    late = 0
    steps = int(a.seconds * a.rate)
    period = 1.0 / a.rate
    gc.collect()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while os.read(a.barrier_fd, 1):  # b"" once the parent closes the write end
        pass
    pc = time.perf_counter
    c0 = time.process_time()
    t0 = pc()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for step in range(steps):
            delay = t0 + step * period - pc()
            if delay > 0:
                time.sleep(delay)  # the trainer's 20 steps/s
            elif delay < -period:
                late += 1
            for k in kinds:
                s = pc()
                if k == "image":
                    w.add_image(f"rank{a.rank}/image", images[step % len(images)], step)
                else:
                    w.add_histogram(f"rank{a.rank}/hist", hists[step % len(hists)], step)
                lat[k].append(pc() - s)
                max_fill = max(max_fill, c.statistics().ring_fill)
    t_logged = pc()
    c_logged = time.process_time()
    st = c.statistics()
    ring_dropped = c.ring.dropped
    w.close()  # returns once the daemon acknowledged every record written
    t_end = pc()
    return {
        "rank": a.rank,
        "steps": steps,
        "late_steps": late,
        "log_s": t_logged - t0,
        "close_ms": (t_end - t_logged) * 1e3,
        "t_end": time.monotonic(),
        "trainer_cpu_ms_per_step": (c_logged - c0) / steps * 1e3,
        "lat_ms": {
            k: {
                "p50": statistics.median(v) * 1e3,
                "p99": _pct(v, 0.99) * 1e3,
                "max": max(v) * 1e3,
            }
            for k, v in lat.items()
        },
        "waits": len(waits),
        "wait_ms_total": sum(waits) * 1e3,
        "wait_ms_max": max(waits, default=0.0) * 1e3,
        "ring_capacity": st.ring_capacity,
        "max_fill": max_fill,
        "records_dropped": st.records_dropped,
        "ring_dropped": ring_dropped,
        "warnings": sorted({str(x.message)[:200] for x in caught})[:3],
    }


def worker_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["calls", "keepup"])
    p.add_argument("--writer", default="summaryd", choices=WRITERS)
    p.add_argument("--log-dir", required=True)
    p.add_argument("--daemon-pid", type=int, default=0)
    p.add_argument("--cases", default="")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--min-reps", type=int, default=30)
    p.add_argument("--max-reps", type=int, default=200)
    p.add_argument("--budget-s", type=float, default=5.0)
    p.add_argument("--rank", type=int, default=0)
    p.add_argument("--kinds", default="image,hist")
    p.add_argument("--rate", type=float, default=20.0)
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--barrier-fd", type=int, default=-1)
    a = p.parse_args(argv)
    res = worker_calls(a) if a.mode == "calls" else worker_keepup(a)
    sys.stdout.write("result " + json.dumps(res) + "\n")
    sys.stdout.flush()
    return 0


# =============================================================================
# orchestrator side
# =============================================================================


def _worker_cmd(mode: str, **kw: Any) -> list[str]:
    cmd = [sys.executable, str(HERE), "--_worker", mode]
    for k, v in kw.items():
        cmd += [f"--{k.replace('_', '-')}", str(v)]
    return cmd


def _parse_result(out: str, what: str) -> dict[str, Any]:
    for line in out.splitlines():
        if line.startswith("result "):
            res: dict[str, Any] = json.loads(line[7:])
            return res
    raise RuntimeError(f"{what}: no result in worker output:\n{out[-2000:]}")


@contextlib.contextmanager
def fast_tensorboard_crc() -> Iterator[None]:
    """TensorBoard's reader, with its CRC-32C in C instead of pure Python.

    Without TensorFlow, ``RawEventFileLoader`` checks every record with a pure-Python
    CRC-32C (~0.3 s per MB: an hour for the keep-up run's images).  The reader and
    its checks stay TensorBoard's; only the function is swapped, after checking that
    both agree.
    """
    from crc32c import crc32c
    from tensorboard.compat.tensorflow_stub import pywrap_tensorflow as pw

    orig = pw.masked_crc32c

    def fast(data: bytes) -> int:
        x = crc32c(data)
        return (((x >> 15) | (x << 17)) + 0xA282EAD8) & 0xFFFFFFFF

    for sample in (b"", b"summaryd", bytes(range(256)) * 3):
        if fast(sample) != orig(sample):
            raise AssertionError("crc32c package disagrees with TensorBoard's masked_crc32c")
    pw.masked_crc32c = fast
    try:
        yield
    finally:
        pw.masked_crc32c = orig


def read_events(log_dir: Path) -> dict[str, list[int]]:
    """Steps per summary tag over every event file in ``log_dir`` (not sub-runs)."""
    from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
    from tensorboard.compat.proto import event_pb2

    steps: dict[str, list[int]] = collections.defaultdict(list)
    with fast_tensorboard_crc():
        for f in sorted(p for p in log_dir.iterdir() if "tfevents" in p.name):
            for raw in RawEventFileLoader(str(f)).Load():
                ev = event_pb2.Event.FromString(raw)
                for v in ev.summary.value:
                    steps[v.tag].append(ev.step)
    return steps


def bench_calls(cfg: dict[str, Any], tmp: Path, prefix: str, cases: str) -> list[dict[str, Any]]:
    out = []
    for writer in WRITERS:
        log_dir = tmp / f"calls-{writer}"
        d = None
        env = dict(os.environ, MPLBACKEND="Agg")
        kw: dict[str, Any] = {k: cfg[k] for k in ("warmup", "min_reps", "max_reps", "budget_s")} | {
            "writer": writer,
            "log_dir": log_dir,
            "cases": cases,
        }
        t = time.perf_counter()
        print(f"calls: {writer} ...", file=sys.stderr, flush=True)
        try:
            if writer == "summaryd":
                d = IsolatedDaemon(tmp, f"{prefix}-calls", name="daemon-calls")
                kw["daemon_pid"] = d.start()
                env = d.env | {"MPLBACKEND": "Agg"}
            r = subprocess.run(
                _worker_cmd("calls", **kw), env=env, capture_output=True, text=True, timeout=1800
            )
            if r.returncode != 0:
                raise RuntimeError(f"calls worker {writer} failed:\n{r.stderr[-3000:]}")
            res = _parse_result(r.stdout, f"calls {writer}")
            if d is not None:
                res["daemon_stderr"] = d.stderr()[-1000:]
        finally:
            if d is not None:
                d.cleanup()
        steps = read_events(log_dir)
        projector = sum(1 for _ in log_dir.rglob("tensors.tsv"))
        for c in res["cases"]:
            if c["error"] is not None:
                continue
            expected = c["warmup"] + 2 * c["calls"]
            got = (
                projector if c["case"] == "embedding" else len(steps.get(f"bench/{c['case']}", []))
            )
            c["on_disk"] = f"{got}/{expected}"
            c["complete"] = got == expected
        shutil.rmtree(log_dir, ignore_errors=True)
        print(
            f"calls: {writer} done in {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True
        )
        out.append(res)
    return out


def run_keepup(
    variant: str, kinds: tuple[str, ...], cfg: dict[str, Any], tmp: Path, prefix: str
) -> dict[str, Any]:
    import psutil

    tag = variant.split()[0].replace("+", "-")
    log_dir = tmp / f"keepup-{tag}"
    procs, steps = cfg["procs"], int(cfg["seconds"] * cfg["rate"])
    workers: list[subprocess.Popen[str]] = []
    errs = []
    rfd, wfd = os.pipe()
    d = IsolatedDaemon(tmp, f"{prefix}-{tag}", name=f"daemon-{tag}")
    try:
        dpid = d.start()
        dproc = psutil.Process(dpid)
        for rank in range(procs):
            err = open(tmp / f"keepup-{tag}-{rank}.stderr", "w+")  # noqa: SIM115
            errs.append(err)
            workers.append(
                subprocess.Popen(
                    _worker_cmd(
                        "keepup",
                        log_dir=log_dir,
                        rank=rank,
                        kinds=",".join(kinds),
                        rate=cfg["rate"],
                        seconds=cfg["seconds"],
                        barrier_fd=rfd,
                    ),
                    env=d.env,
                    pass_fds=(rfd,),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=err,
                    text=True,
                )
            )
        os.close(rfd)
        rfd = -1
        for p, err in zip(workers, errs, strict=True):
            assert p.stdout is not None
            if p.stdout.readline().strip() != "ready":
                p.wait(30)
                err.seek(0)
                raise RuntimeError(f"keep-up worker not ready:\n{err.read()[-3000:]}")
        # Daemon CPU from barrier release until every writer's close() was acknowledged,
        # sampled every 0.5 s for its utilisation (cores busy) over the run.
        d_cpu0 = tree_cpu(dproc)
        t0 = time.monotonic()
        os.close(wfd)
        wfd = -1
        samples = [(t0, d_cpu0)]
        while any(p.poll() is None for p in workers):
            time.sleep(0.5)  # sampling interval, not a barrier
            samples.append((time.monotonic(), tree_cpu(dproc)))
        results = []
        for p, err in zip(workers, errs, strict=True):
            out = p.stdout.read() if p.stdout else ""
            if p.returncode != 0:
                err.seek(0)
                raise RuntimeError(f"keep-up worker failed ({p.returncode}):\n{err.read()[-3000:]}")
            results.append(_parse_result(out, f"keepup {variant}"))
        t_end = max(r["t_end"] for r in results)
        d_cpu1 = tree_cpu(dproc)
        daemon_rss = tree_rss(dproc)
    finally:
        for fd in (rfd, wfd):
            if fd >= 0:
                os.close(fd)
        for p in workers:
            if p.poll() is None:
                p.kill()
                p.wait()
        for err in errs:
            err.close()
        d.cleanup()
    util = [
        (c1 - c0) / (t1 - s0)
        for (s0, c0), (t1, c1) in zip(samples, samples[1:], strict=False)
        if t1 > s0
    ]
    t_read = time.perf_counter()
    back = read_events(log_dir)
    t_read = time.perf_counter() - t_read
    missing = dup = 0
    for r in range(procs):
        for k in kinds:
            got = collections.Counter(back.get(f"rank{r}/{k}", []))
            missing += sum(1 for s in range(steps) if s not in got)
            dup += sum(n - 1 for n in got.values() if n > 1)
    png_bytes = sum(f.stat().st_size for f in log_dir.iterdir() if "tfevents" in f.name)
    shutil.rmtree(log_dir, ignore_errors=True)
    records = procs * steps * len(kinds)
    return {
        "variant": variant,
        "kinds": list(kinds),
        "procs": procs,
        "steps": steps,
        "records": records,
        "elapsed_s": t_end - t0,
        "daemon_cpu_s": d_cpu1 - d_cpu0,
        "daemon_cpu_ms_per_record": (d_cpu1 - d_cpu0) / records * 1e3,
        "daemon_cpu_ms_per_step": (d_cpu1 - d_cpu0) / (procs * steps) * 1e3,
        "daemon_util_mean": (d_cpu1 - d_cpu0) / max(1e-9, t_end - t0),
        "daemon_util_max": max(util, default=0.0),
        "daemon_rss_mb": daemon_rss / 2**20,
        "read_back": sum(len(v) for v in back.values()),
        "missing": missing,
        "duplicated": dup,
        "file_mb": png_bytes / 2**20,
        "read_back_s": t_read,
        "load": os.getloadavg(),
        "per_process": sorted(results, key=lambda r: r["rank"]),
    }


def bench_keepup(cfg: dict[str, Any], tmp: Path, prefix: str) -> list[dict[str, Any]]:
    out = []
    for variant, kinds in VARIANTS.items():
        t = time.perf_counter()
        try:
            r = run_keepup(variant, kinds, cfg, tmp, prefix)
        except RuntimeError as exc:  # e.g. a method not implemented yet: the row is n/a
            last = [x for x in str(exc).splitlines() if x.strip()][-1:] or [""]
            out.append({"variant": variant, "kinds": list(kinds), "error": last[0][:300]})
            print(f"keep-up {variant}: FAILED: {exc}", file=sys.stderr, flush=True)
            continue
        print(
            f"keep-up {variant}: daemon {r['daemon_cpu_ms_per_record']:.1f} ms/record, "
            f"{r['missing']} missing (stage {time.perf_counter() - t:.0f} s, "
            f"read-back {r['read_back_s']:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
        out.append(r)
    return out


# -- report ------------------------------------------------------------------------


def _ok(c: dict[str, Any] | None) -> bool:
    return c is not None and c["error"] is None


def _get(c: dict[str, Any] | None, key: str) -> float | None:
    return c[key] if c is not None and _ok(c) else None


def _ratio(a: dict[str, Any] | None, sd: dict[str, Any] | None, key: str) -> float | None:
    """``a[key] ÷ sd[key]`` when both rows were measured."""
    if a is None or sd is None or not (_ok(a) and _ok(sd)) or sd[key] <= 0:
        return None
    return float(a[key] / sd[key])


def _lat3(x: dict[str, float] | None) -> str:
    return "—" if x is None else f"{x['p50']:.2f} / {x['p99']:.2f} / {x['max']:.1f}"


def report_calls(calls: list[dict[str, Any]], cfg: dict[str, Any]) -> list[str]:
    by = {(r["writer"], c["case"]): c for r in calls for c in r["cases"]}
    out = [
        f"1a. trainer-side time per call, isolated (ms; {cfg['warmup']} warm-up calls, then "
        f"{cfg['min_reps']}-{cfg['max_reps']} timed calls, ≥ {cfg['budget_s']:g} s per row, "
        "each followed by an untimed settle: its events written)",
        "    wall = perf_counter, CPU = process_time, around the call only; bg CPU = process "
        "CPU from the call to the end of the settle (torch's/tensorboardX's writer thread);",
        "    daemon CPU = the summaryd daemon's CPU per call, its encoder processes included",
        "",
    ]
    rows = []
    b_rows = []
    notes = []
    for name, method, desc, *_ in CASES:
        for w in WRITERS:
            c = by.get((w, name))
            if c is None:
                continue
            label = f"{method} ({desc})"
            if c["error"] is not None:
                rows.append([label, w, *["n/a"] * 5, "—", "—", "—"])
                b_rows.append([label, w, *["n/a"] * 5])
                notes.append(f"{method} {name} / {w}: {c['error']}")
                continue
            rows.append(
                [
                    label,
                    w,
                    _fmt(c["wall_p50"], ".3f"),
                    _fmt(c["wall_p90"], ".3f"),
                    _fmt(c["cpu_p50"], ".3f"),
                    _fmt(c["cpu_p90"], ".3f"),
                    _fmt(c["cpu_bg_p50"], ".2f"),
                    _fmt(c.get("daemon_cpu_ms"), ".2f"),
                    str(c["calls"]),
                    c.get("on_disk", "?"),
                ]
            )
            b_rows.append(
                [
                    label,
                    w,
                    _fmt(c["b2b_wall_p50"], ".3f"),
                    _fmt(c["b2b_wall_p90"], ".3f"),
                    _fmt(c["b2b_cpu_p50"], ".3f"),
                    _fmt(c["b2b_cpu_p90"], ".3f"),
                    _fmt(c["b2b_sustained"], ".3f"),
                ]
            )
            for n in c["notices"]:
                notes.append(f"{method} {name} / {w} warned: {n}")
    headers = ["call", "writer", "wall p50", "wall p90", "CPU p50", "CPU p90"]
    out.append(_table([*headers, "bg CPU p50", "daemon CPU", "calls", "on disk"], rows))
    out += [f"  note: {n}" for n in notes]
    out += [
        "",
        "1b. the same number of calls back to back (no settle between them); sustained = "
        "(time in the calls + one settle at the end) / calls: the pipeline's throughput "
        "(for summaryd the daemon's, which a trainer waits for only when its ring is full)",
        "",
        _table([*headers, "sustained ms/call"], b_rows),
        "",
        "ratios: torch (or tensorboardX) ÷ summaryd, median wall time per call (targets: "
        "isolated); CPU = median CPU, isolated; b2b = median wall, back to back",
        "",
    ]
    rows = []
    for name, method, _, target, ref in CASES:
        sd, th, tx = (by.get((w, name)) for w in WRITERS)
        r_t, r_x = _ratio(th, sd, "wall_p50"), _ratio(tx, sd, "wall_p50")
        verdict = ""
        if target is not None:
            if r_t is None:
                verdict = "n/a"
            else:
                verdict = "met" if r_t >= target else "NOT MET"
                if sd is not None and not sd.get("complete", False):
                    verdict += " (events not all written)"
        rows.append(
            [
                f"{method} {name}",
                _fmt(_get(th, "wall_p50"), ".2f"),
                _fmt(ref, "g"),
                _fmt(_get(tx, "wall_p50"), ".2f"),
                _fmt(_get(sd, "wall_p50"), ".3f"),
                _x(r_t),
                _x(r_x),
                _x(_ratio(th, sd, "cpu_p50")),
                _x(_ratio(th, sd, "b2b_wall_p50")),
                _x(_ratio(tx, sd, "b2b_wall_p50")),
                f"≥ {target:g}×" if target else "",
                verdict,
            ]
        )
    out.append(
        _table(
            [
                "call",
                "torch ms",
                "torch ref ms",
                "tbX ms",
                "summaryd ms",
                "torch÷sd",
                "tbX÷sd",
                "CPU torch÷sd",
                "b2b torch÷sd",
                "b2b tbX÷sd",
                "target",
                "",
            ],
            rows,
        )
    )
    return out


def _x(v: float | None) -> str:
    return "—" if v is None else f"{v:.1f}×"


def report_keepup(keep: list[dict[str, Any]], cfg: dict[str, Any]) -> list[str]:
    out = [
        f"2. the daemon keeps up: {cfg['procs']} processes × {cfg['rate']:g} steps/s × "
        f"{cfg['seconds']:g} s, each step one 3x512x512 float32 image (smooth gradients + "
        "blob + noise σ=0.02) and/or one 1e6-float32 histogram (normal), one summaryd daemon",
        "",
    ]
    failed = [v for v in keep if "error" in v]
    keep = [v for v in keep if "error" not in v]
    if not keep:
        return out + [f"  {v['variant']}: n/a, the run failed: {v['error']}" for v in failed]
    rows = []
    for v in keep:
        for p in v["per_process"]:
            cap = p["ring_capacity"]

            rows.append(
                [
                    v["variant"],
                    str(p["rank"]),
                    str(p["steps"]),
                    str(p["late_steps"]),
                    f"{p['steps'] / p['log_s']:.1f}",
                    _lat3(p["lat_ms"].get("image")),
                    _lat3(p["lat_ms"].get("hist")),
                    f"{p['waits']} ({p['wait_ms_total']:.0f} ms)",
                    f"{p['max_fill'] / 2**20:.1f} MiB ({100 * p['max_fill'] / cap:.0f} %)",
                    f"{p['records_dropped']} / {p['ring_dropped']}",
                    f"{p['trainer_cpu_ms_per_step']:.2f}",
                    f"{p['close_ms']:.0f}",
                ]
            )
    out.append(
        _table(
            [
                "variant",
                "rank",
                "steps",
                "late",
                "steps/s",
                "image ms p50/p99/max",
                "hist ms p50/p99/max",
                "waits (total)",
                "max ring fill",
                "dropped stat/ring",
                "trainer CPU ms/step",
                "close() ms",
            ],
            rows,
        )
    )
    cap = keep[0]["per_process"][0]["ring_capacity"] if keep else 0
    out += [
        f"(ring capacity {cap / 2**20:.0f} MiB; late = steps started more than one period "
        "behind schedule; steps/s = achieved rate; waits = calls that found the ring full)",
        "",
    ]
    rows = []
    for v in keep:
        rows.append(
            [
                v["variant"],
                str(v["records"]),
                f"{v['elapsed_s']:.2f}",
                f"{v['daemon_cpu_s']:.2f}",
                f"{v['daemon_cpu_ms_per_record']:.2f}",
                f"{v['daemon_util_mean']:.2f} / {v['daemon_util_max']:.2f}",
                f"{v['daemon_rss_mb']:.0f}",
                f"{v['read_back']}",
                f"{v['missing']} / {v['duplicated']}",
                f"{v['file_mb']:.0f}",
                ", ".join(f"{x:.1f}" for x in v["load"]),
            ]
        )
    out.append(
        _table(
            [
                "variant",
                "records",
                "elapsed s",
                "daemon CPU s",
                "daemon CPU ms/record",
                "daemon cores mean/max",
                "daemon RSS MiB (with encoders)",
                "read back",
                "missing / dup",
                "event file MiB",
                "load after",
            ],
            rows,
        )
    )
    by = {v["variant"]: v for v in keep}
    if "image only" in by and "histogram only" in by:
        im = by["image only"]["daemon_cpu_ms_per_record"]
        hi = by["histogram only"]["daemon_cpu_ms_per_record"]
        line = f"daemon CPU per image {im:.2f} ms, per histogram {hi:.2f} ms"
        if "image+histogram" in by:
            both = by["image+histogram"]["daemon_cpu_ms_per_step"]
            line += (
                f"; per image+histogram step {both:.2f} ms (sum of the two alone: {im + hi:.2f} ms)"
            )
        out.append(line)
        rate = cfg["procs"] * cfg["rate"]
        out.append(
            f"at {rate:g} steps/s in total that is {rate * (im + hi) / 1e3:.2f} cores of "
            f"daemon CPU ({os.cpu_count()} cores here)"
        )
    for v in failed:
        out.append(f"  {v['variant']}: n/a, the run failed: {v['error']}")
    for v in keep:
        for p in v["per_process"]:
            for w in p["warnings"]:
                out.append(f"  warning in {v['variant']} rank {p['rank']}: {w}")
    return out


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--_worker":
        return worker_main(sys.argv[2:])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="short run (~2 min)")
    p.add_argument("--json", metavar="PATH", help="also write every figure as JSON")
    p.add_argument("--only", choices=["calls", "keepup"], help="run one of the two parts")
    p.add_argument("--cases", default="", help="comma-separated case names (calls)")
    p.add_argument("--seconds", type=float, help="keep-up duration per variant")
    a = p.parse_args()
    cfg = dict(QUICK if a.quick else FULL)
    if a.seconds:
        cfg["seconds"] = a.seconds
    prefix = "sdbm-" + secrets.token_hex(4)  # rings: /dev/shm/<prefix>-<daemon>.*
    tmp = Path(tempfile.mkdtemp(prefix="sdbench-media-"))
    t_all = time.perf_counter()
    res: dict[str, Any] = {"config": cfg, "machine": machine()}
    try:
        if a.only != "keepup":
            res["calls"] = bench_calls(cfg, tmp, prefix, a.cases)
        if a.only != "calls":
            res["keepup"] = bench_keepup(cfg, tmp, prefix)
        res["wall_s"] = time.perf_counter() - t_all
    finally:
        remove_scratch(tmp, prefix)
    if a.json:  # first: the figures survive a failing report
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)
    out = [f"machine: {res['machine']}", ""]
    if "calls" in res:
        out += report_calls(res["calls"], cfg) + [""]
    if "keepup" in res:
        out += report_keepup(res["keepup"], cfg) + [""]
    out.append(f"(total {res['wall_s']:.0f} s)")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
