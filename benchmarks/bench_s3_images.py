"""1,000 images to s3:// through the real daemon vs torch's SummaryWriter, same weed.

Each writer runs in a fresh interpreter (a ``--worker`` child of this script)
against the same SeaweedFS server (``tests/s3server.py``); summaryd's trainer
talks to an isolated daemon (default settings: seal after 5 s, objects grow by
up to 8 writes), torch's writer goes through TensorBoard's gfile S3 (boto3,
``S3_ENDPOINT``), ``max_queue`` and ``flush_secs`` at torch's defaults.

Workload: ``--images`` (1,000) calls ``add_image("img", x, step)`` back to
back with ``x`` a 3x256x256 uint8 CHW array (a colour gradient plus Gaussian
noise, sigma 8, so PNG keeps about 137 kB of the 196 kB, like a photo; 100
distinct arrays cycled), and ``flush()`` after every ``--every`` (10) images,
as a loop that logs every step and flushes periodically does.

Figures, counted the same way for both writers:

* requests and request-body bytes: botocore's ``before-send`` on every client
  of the trainer process (``s3common.count_requests``) plus, for summaryd, the
  daemon's own store counters (same hook, ``summaryd status``);
* objects and bytes in the bucket afterwards;
* trainer CPU per call: ``process_time`` (all threads) over the loop, flushes
  included, probes excluded; summaryd's daemon CPU (with its encoder
  processes) is reported beside it;
* add_image -> readable: at ``--probes`` blocks spread over the run, from the
  return of the block's first ``add_image`` (the image that waits longest for
  the flush) to the start of the first GET that finds it in the bucket (GETs
  start when that block's ``flush()`` returns, then every 20 ms).

Run: ``python benchmarks/bench_s3_images.py`` (a few minutes: torch re-sends
its whole file on every flush). Not collected by pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.machine import describe, tree_cpu  # noqa: E402
from benchmarks.s3common import (  # noqa: E402
    bucket_usage,
    count_requests,
    make_images,
    private_client,
    readable,
    run_status,
    weed_and_daemon,
)

BUCKET = "bench"


def probe_blocks(blocks: int, probes: int) -> set[int]:
    """``probes`` block numbers spread evenly over ``blocks`` (the middle of each slice)."""
    return {int((k + 0.5) * blocks / probes) for k in range(min(probes, blocks))}


def worker(who: str, url: str, n: int, every: int, probes: int) -> dict[str, Any]:
    """One writer's run, in a fresh interpreter; its figures as a dict."""
    env = dict(os.environ)
    imgs = make_images()
    reader = private_client(env)  # made before the tally: its GETs are not counted
    prefix = url.split("/", 3)[3] + "/"
    tally = count_requests()
    if who == "summaryd":
        from summaryd import SummaryWriter
    else:
        from torch.utils.tensorboard import SummaryWriter
    w = SummaryWriter(url)
    blocks = probe_blocks(n // every, probes)
    lat: list[float] = []
    flush_ret: list[float] = []
    call_ns: list[int] = []
    probe_cpu = 0.0
    t_first = 0.0
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    for i in range(n):
        t = time.perf_counter_ns()
        w.add_image("img", imgs[i % len(imgs)], i)
        call_ns.append(time.perf_counter_ns() - t)
        block, pos = divmod(i, every)
        if pos == 0:
            t_first = time.perf_counter()
        if pos == every - 1:
            w.flush()
            if block in blocks:
                flush_ret.append(time.perf_counter() - t_first)
                c = time.process_time()
                while True:
                    t_get = time.perf_counter()
                    if readable(reader, BUCKET, prefix, block * every):
                        break
                    time.sleep(0.02)
                lat.append(t_get - t_first)
                probe_cpu += time.process_time() - c
    cpu = time.process_time() - cpu0 - probe_cpu
    wall = time.perf_counter() - wall0
    w.flush()
    daemon = run_status(env, url) if who == "summaryd" else {}
    t = time.perf_counter()
    w.close()
    close_s = time.perf_counter() - t
    call_ns.sort()
    return {
        "cpu_per_call_ms": cpu / n * 1e3,
        "wall_per_call_ms": wall / n * 1e3,
        "call_p50_ms": call_ns[n // 2] / 1e6,
        "call_p99_ms": call_ns[int(0.99 * (n - 1))] / 1e6,
        "close_s": close_s,
        "latency_s": lat,
        "flush_return_s": flush_ret,
        "trainer_requests": tally.requests,
        "trainer_bytes": tally.bytes,
        "daemon_requests": daemon.get("requests", 0),
        "daemon_bytes": daemon.get("bytes_sent", 0),
        "uploads": daemon.get("uploaded_segments", 0),
    }


def run_worker(who: str, env: dict[str, str], url: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", who, "--url", url]
    cmd += ["--images", str(args.images), "--every", str(args.every), "--probes", str(args.probes)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        raise RuntimeError(f"{who} worker failed:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--every", type=int, default=10, help="flush() after every N images")
    ap.add_argument("--probes", type=int, default=10)
    ap.add_argument("--worker", choices=("summaryd", "torch"))
    ap.add_argument("--url")
    args = ap.parse_args()
    if args.worker:
        res = worker(args.worker, args.url, args.images, args.every, args.probes)
        print(json.dumps(res))
        return
    import psutil

    print(describe(("torch", "tensorboard", "boto3", "botocore")))
    n, every = args.images, args.every
    with weed_and_daemon("bench-s3img") as (s3, d, _tmp):
        assert d.proc is not None
        daemon_proc = psutil.Process(d.proc.pid)
        torch_env = s3.env(dict(os.environ))
        reader = private_client(torch_env)
        rows: dict[str, dict[str, Any]] = {}
        for who, env in (("summaryd", d.env), ("torch", torch_env)):
            url = f"s3://{s3.bucket}/{who}"
            print(f"{who}: {n} images, flush every {every} ...", file=sys.stderr, flush=True)
            c0, t0 = tree_cpu(daemon_proc), time.perf_counter()
            r = run_worker(who, env, url, args)
            r["elapsed_s"] = time.perf_counter() - t0
            r["daemon_cpu_per_call_ms"] = (tree_cpu(daemon_proc) - c0) / n * 1e3
            r["objects"], r["stored"] = bucket_usage(reader, s3.bucket, f"{who}/")
            r["requests"] = r["trainer_requests"] + r["daemon_requests"]
            r["bytes"] = r["trainer_bytes"] + r["daemon_bytes"]
            rows[who] = r
        print(f"load after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    report(rows, n, every, args.probes)


def report(rows: dict[str, dict[str, Any]], n: int, every: int, probes: int) -> None:
    print(
        f"\n{n:,} images 3x256x256 uint8 (gradient + noise), add_image back to back, "
        f"flush() every {every} ({n // every} flushes); {probes} probes"
    )
    head = (
        "| writer | MB sent | requests | objects | MB in bucket | trainer CPU ms/call "
        "| daemon CPU ms/call | call p50/p99 ms | readable p50 / p99 s | flush returns p50 s "
        "| run s |"
    )
    print(head)
    print("|:--" + "|--:" * (head.count("|") - 2) + "|")
    for who, r in rows.items():
        dcpu = f"{r['daemon_cpu_per_call_ms']:.2f}" if who == "summaryd" else "—"
        print(
            f"| {who} | {r['bytes'] / 1e6:,.1f} | {r['requests']:,} | {r['objects']} "
            f"| {r['stored'] / 1e6:.1f} | {r['cpu_per_call_ms']:.3f} | {dcpu} "
            f"| {r['call_p50_ms']:.3f} / {r['call_p99_ms']:.2f} "
            f"| {statistics.median(r['latency_s']):.3f} / {pct(r['latency_s'], 0.99):.3f} "
            f"| {statistics.median(r['flush_return_s']):.3f} | {r['elapsed_s']:.0f} |"
        )
    s, t = rows["summaryd"], rows["torch"]
    print(
        f"\nsummaryd: {s['trainer_requests']} request(s) by the trainer (the bucket check), "
        f"{s['daemon_requests']} by the daemon, {s['uploads']} uploads\n"
        f"torch ÷ summaryd: bytes sent {t['bytes'] / s['bytes']:.1f}x, requests "
        f"{t['requests'] / s['requests']:.2f}x, trainer CPU per call "
        f"{t['cpu_per_call_ms'] / s['cpu_per_call_ms']:.1f}x (vs summaryd trainer + daemon: "
        f"{t['cpu_per_call_ms'] / (s['cpu_per_call_ms'] + s['daemon_cpu_per_call_ms']):.2f}x), "
        f"readable p50 {statistics.median(t['latency_s']) / statistics.median(s['latency_s']):.2f}x"
    )


if __name__ == "__main__":
    main()
