"""A long run's footprint in the bucket: objects and bytes per run, summaryd vs torch.

A day of logging at a realistic rate (``--scalar-rate`` 10 scalars/s plus one
3x256x256 image every ``--image-secs`` 60 s, the images of ``s3common.make_images``)
is replayed on accelerated time: ``--hours`` (2) of simulated run in
``--hours * 3600 / --speedup`` (30) real seconds. Every timing rule that shapes
the layout is divided by the same speed-up, so the run makes the same number of
uploads and objects as the real one would:

* summaryd (real daemon, isolated, own weed): ``SUMMARYD_S3_SEAL_SECS`` =
  5 s / speed-up, ``SUMMARYD_MAX_LATENCY`` = 1 s / speed-up,
  ``SUMMARYD_S3_MAX_WRITES`` at its default 8; the trainer never calls
  ``flush()`` (a long run just logs), then ``close()``;
* torch's ``SummaryWriter`` on the same weed at the same time (its own trainer
  process): ``flush_secs`` = 120 s (its default) / speed-up, ``max_queue``
  default, no explicit ``flush()``; TensorBoard's gfile S3 has no append, so
  every flush PUTs the whole file.

Measured on the scaled run: objects and bytes left in the bucket, bytes and
requests sent (botocore's ``before-send`` in the trainers, the daemon's store
counters), and every event read back (all scalars and images present). Scaled
to 24 hours: summaryd's figures grow linearly with the duration (the same
uploads every 5 s, an object per 8 of them); torch's bytes sent are
quadratic -- each of its K = 86,400 / 120 = 720 flushes re-sends the file
so far, about B (K + 1) / 2 for B bytes logged -- computed analytically,
after checking that formula against the scaled run's measured bytes.

Run: ``python benchmarks/bench_s3_longrun.py`` (about 5 min). Not collected by pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.machine import describe  # noqa: E402
from benchmarks.s3common import (  # noqa: E402
    count_requests,
    events_in,
    make_images,
    private_client,
    run_status,
    tfevents_keys,
    weed_and_daemon,
)

DAY = 86_400.0
SEAL_SECS, MAX_LATENCY, MAX_WRITES, TORCH_FLUSH_SECS = 5.0, 1.0, 8, 120.0


def schedule(
    sim_secs: float, scalar_rate: float, image_secs: float
) -> list[tuple[float, str, int]]:
    """(simulated time, kind, step) of every event, in time order."""
    ev = [(k / scalar_rate, "scalar", k) for k in range(int(sim_secs * scalar_rate))]
    ev += [(j * image_secs, "image", j) for j in range(int(sim_secs / image_secs))]
    return sorted(ev)


def worker(who: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    """Log the schedule at ``speedup`` x real time; figures as a dict."""
    env = dict(os.environ)
    imgs = make_images()
    events = schedule(args.hours * 3600, args.scalar_rate, args.image_secs)
    tally = count_requests()
    if who == "summaryd":
        from summaryd import SummaryWriter

        w = SummaryWriter(url)
    else:
        from torch.utils.tensorboard import SummaryWriter

        w = SummaryWriter(url, flush_secs=TORCH_FLUSH_SECS / args.speedup)
    t0 = time.monotonic()
    late = 0.0
    cpu0 = time.process_time()
    for sim_t, kind, step in events:
        due = t0 + sim_t / args.speedup
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)  # pacing the workload, not waiting for a result
        else:
            late = max(late, now - due)
        if kind == "scalar":
            w.add_scalar("loss", 1.0 / (step + 1), step)
        else:
            w.add_image("img", imgs[step % len(imgs)], step)
    cpu = time.process_time() - cpu0
    daemon = run_status(env, url) if who == "summaryd" else {}
    w.close()
    return {
        "cpu_s": cpu,
        "max_late_s": late,
        "real_s": time.monotonic() - t0,
        "trainer_requests": tally.requests,
        "trainer_bytes": tally.bytes,
        "trainer_puts": tally.puts,
        "daemon_requests": daemon.get("requests", 0),
        "daemon_bytes": daemon.get("bytes_sent", 0),
        "uploads": daemon.get("uploaded_segments", 0),
    }


def read_back(client: Any, bucket: str, prefix: str) -> dict[str, Any]:
    """Objects, stored bytes, and the events in them: scalars, images, the
    bytes of their TFRecords (what was logged), and the header events."""
    objs = tfevents_keys(client, bucket, prefix)
    out = {"objects": len(objs), "stored": 0, "scalars": set(), "images": set(), "logged": 0}
    out["headers"] = 0
    for o in objs:
        body = client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
        out["stored"] += len(body)
        for ev in events_in(body):
            size = 12 + ev.ByteSize() + 4
            if ev.HasField("file_version"):
                out["headers"] += size
                continue
            for v in ev.summary.value:
                kind = "images" if v.HasField("image") else "scalars"
                out[kind].add(ev.step)
            out["logged"] += size
    out["scalars"], out["images"] = len(out["scalars"]), len(out["images"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=2.0, help="simulated hours to log")
    ap.add_argument("--speedup", type=float, default=30.0)
    ap.add_argument("--scalar-rate", type=float, default=10.0, help="scalars per simulated s")
    ap.add_argument("--image-secs", type=float, default=60.0, help="simulated s between images")
    ap.add_argument("--worker", choices=("summaryd", "torch"))
    ap.add_argument("--url")
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.url, args)))
        return
    print(describe(("torch", "tensorboard", "boto3", "botocore")))
    s = args.speedup
    denv = {
        "SUMMARYD_S3_SEAL_SECS": str(SEAL_SECS / s),
        "SUMMARYD_MAX_LATENCY": str(MAX_LATENCY / s),
        "SUMMARYD_S3_MAX_WRITES": str(MAX_WRITES),
    }
    with weed_and_daemon("bench-s3long", denv) as (s3, d, _tmp):
        torch_env = s3.env(dict(os.environ))
        reader = private_client(torch_env)
        procs = {}
        for who, env in (("summaryd", d.env), ("torch", torch_env)):
            cmd = [sys.executable, __file__, "--worker", who, "--url", f"s3://{s3.bucket}/{who}"]
            cmd += ["--hours", str(args.hours), "--speedup", str(s)]
            cmd += ["--scalar-rate", str(args.scalar_rate), "--image-secs", str(args.image_secs)]
            procs[who] = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
        print(
            f"logging {args.hours} h simulated in {args.hours * 3600 / s:.0f} s, both writers "
            "at once ...",
            file=sys.stderr,
            flush=True,
        )
        rows = {}
        for who, p in procs.items():
            out, _ = p.communicate(timeout=3 * args.hours * 3600 / s + 600)
            if p.returncode != 0:
                raise RuntimeError(f"{who} worker exited with {p.returncode}")
            r = json.loads(out.strip().splitlines()[-1])
            r.update(read_back(reader, s3.bucket, f"{who}/"))
            r["requests"] = r["trainer_requests"] + r["daemon_requests"]
            r["bytes"] = r["trainer_bytes"] + r["daemon_bytes"]
            rows[who] = r
        print(f"load after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    report(rows, args)


def report(rows: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    h, s = args.hours, args.speedup
    n_sc = int(h * 3600 * args.scalar_rate)
    n_im = int(h * 3600 / args.image_secs)
    print(
        f"\n{h:g} h simulated at {s:g}x ({n_sc:,} scalars, {n_im} images 3x256x256; "
        f"summaryd seal {SEAL_SECS / s:.3f} s, max latency {MAX_LATENCY / s:.3f} s, "
        f"max writes {MAX_WRITES}; torch flush_secs {TORCH_FLUSH_SECS / s:.2f} s)"
    )
    print(
        "| writer | scalars / images read back | objects | MB in bucket | MB logged "
        "| MB sent | requests | PUTs | sent ÷ logged | trainer CPU s | max late s |"
    )
    print("|:--" + "|--:" * 10 + "|")
    for who, r in rows.items():
        puts = r["uploads"] if who == "summaryd" else r["trainer_puts"]
        print(
            f"| {who} | {r['scalars']:,} / {r['images']} | {r['objects']} "
            f"| {r['stored'] / 1e6:.2f} | {r['logged'] / 1e6:.2f} | {r['bytes'] / 1e6:.2f} "
            f"| {r['requests']:,} | {puts:,} | {r['bytes'] / r['logged']:.2f} "
            f"| {r['cpu_s']:.1f} | {r['max_late_s']:.3f} |"
        )
    sd, tt = rows["summaryd"], rows["torch"]
    print(
        f"\nsummaryd: an upload every {h * 3600 / max(1, sd['uploads']):.2f} simulated s "
        f"({sd['uploads']:,} uploads, {sd['uploads'] / max(1, sd['objects']):.2f} per object)"
    )
    k = tt["trainer_puts"]
    formula = tt["logged"] * (k + 1) / 2
    print(
        f"\ntorch, whole file per flush: {k} PUTs; B (K + 1) / 2 = {formula / 1e6:.1f} MB "
        f"vs {tt['bytes'] / 1e6:.1f} MB measured ({tt['bytes'] / formula:.2f}x)"
    )
    scale = 24 / h
    k_day = DAY / TORCH_FLUSH_SECS
    t_logged = tt["logged"] * scale
    print(
        f"\n24 hours, one node (summaryd measured x {scale:g}; torch analytic, "
        f"K = {k_day:.0f} flushes):\n"
        f"  summaryd: {sd['objects'] * scale:,.0f} objects ({sd['uploads'] * scale:,.0f} uploads;"
        f" the layout's rule 17,280 / 8 = 2,160), {sd['stored'] * scale / 1e6:,.0f} MB in the "
        f"bucket for {sd['logged'] * scale / 1e6:,.0f} MB logged "
        f"(+{sd['headers'] / max(1, sd['objects']):.0f} B header per object), "
        f"{sd['bytes'] * scale / 1e6:,.0f} MB sent in {sd['requests'] * scale:,.0f} requests\n"
        f"  torch:    1 object, {t_logged / 1e6:,.0f} MB in the bucket, "
        f"{t_logged * (k_day + 1) / 2 / 1e9:,.1f} GB sent in ~{k_day:.0f} PUTs\n"
        f"  torch ÷ summaryd bytes sent: {t_logged * (k_day + 1) / 2 / (sd['bytes'] * scale):,.0f}x"
    )


if __name__ == "__main__":
    main()
