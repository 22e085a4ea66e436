#!/usr/bin/env python
"""Media encoders across cores: ``daemon.jobs.EncoderPool`` vs a thread pool, 1 vs 2 cores.

    python benchmarks/bench_encoders.py [--seconds S] [--rounds R] [--json out.json]

Feeds real array records, built as the SDK builds them (``convert_image.image``,
``convert_numeric.histogram``, ``arrays.array_parts``), to the daemon's encoder
runtime and counts finished items per second: one 3x512x512 float32 image
(uniform noise: the expensive case for deflate) and one 1e6-value float32
histogram (normal).  Each configuration runs in a fresh interpreter under
``taskset -c 0`` (one core) or ``taskset -c 0,1`` (two cores), with 1 or 2
workers, in two runtimes:

* ``processes``: ``EncoderPool`` (worker processes, the payload through a memfd arena);
* ``threads``: a ``ThreadPoolExecutor`` running ``encode.array_record``, as the loop did;
* ``ideal``: forked processes encoding their own copy, no hand-over: the
  ceiling this machine allows at that moment (shared VMs' two vCPUs have
  delivered anywhere from 1.0x to 1.9x of one for independent processes).

As in the daemon, the submitting thread copies each payload out of a "ring"
(a bytes copy of the record's data) before handing it over, and keeps
``2 * workers + 2`` items in flight.  Reported per configuration (median of the
rounds, which interleave): items/s, CPU per item (the submitting process and
its threads plus every worker, from their own CPU times), the submitting
process's CPU per item (the loop's share: ring copy, transfer, dispatch), and
the resident memory of all processes.  The ratio lines divide the two-core
figure by the one-core figure of the same runtime and worker count.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
KINDS = ("image", "histogram")
CORES = ("0", "0,1")


def _records(kind: str) -> tuple[list[Any], bytes]:
    """One array record and its data, exactly as the SDK's ``_put_arrays`` builds them."""
    import numpy as np

    from summaryd import convert_image, convert_numeric, wire
    from summaryd.arrays import array_parts

    rng = np.random.default_rng(0)
    if kind == "image":
        code = wire.IMAGE
        params, arrays = convert_image.image(rng.random((3, 512, 512), dtype=np.float32), "CHW")
    else:
        code = wire.HISTOGRAM
        values = rng.standard_normal(1_000_000).astype(np.float32)
        params, arrays = convert_numeric.histogram(values, "tensorflow", None)
    specs, parts, _ = array_parts(arrays)
    data = b"".join(bytes(p) for p in parts)
    return [code, 1, kind, 1, 1.0, params, specs, b""], data


def _cpu(pids: list[int]) -> float:
    import psutil

    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system
    return total


def _rss(pids: list[int]) -> int:
    import psutil

    return sum(psutil.Process(p).memory_info().rss for p in pids)


def _pss(pids: list[int]) -> int:
    """Proportional set size: shared pages (libraries, the arenas) counted once overall."""
    import psutil

    return sum(psutil.Process(p).memory_full_info().pss for p in pids)


def keepup(seconds: float, procs: int = 4, rate: float = 20.0) -> dict[str, Any]:
    """Issue 3's keep-up load on the pool: ``procs`` trainers, each one image and one
    histogram per step at ``rate`` steps/s; latency from hand-over to result."""
    import threading

    import threadpoolctl

    from summaryd.daemon.jobs import EncoderPool

    threadpoolctl.threadpool_limits(1)
    recs = [_records(k) for k in KINDS]
    ready = threading.Event()
    pool = EncoderPool(None, wake=ready.set)
    while len(pool.worker_pids()) < 1:
        time.sleep(0.01)
    time.sleep(1.0)  # workers started (a setting-up pause, not a barrier)
    pids = [*pool.worker_pids(), os.getpid()]
    sent: dict[int, float] = {}
    lat: list[float] = []
    job = 0
    most = 0
    mem: list[tuple[float, int, int]] = []
    cpu0, t0 = _cpu(pids), time.monotonic()
    nxt = t0
    while True:
        now = time.monotonic()
        if now >= nxt:
            if now - t0 >= seconds:
                break
            for _ in range(procs):
                for rec, ring in recs:
                    job += 1
                    sent[job] = time.monotonic()
                    pool.encode(job, rec, bytes(memoryview(ring)))
            nxt += 1.0 / rate
            most = max(most, pool.outstanding())
            if job % (procs * 2 * int(rate) * 5) == 0:  # every 5 s
                mem.append((now - t0, _rss(pids), _pss(pids)))
        ready.wait(max(0.0, nxt - time.monotonic()))
        ready.clear()
        for j, res in pool.results():
            if isinstance(res, Exception):
                raise res
            lat.append(time.monotonic() - sent.pop(j))
    pool.wait(60)
    for j, _res in pool.results():
        lat.append(time.monotonic() - sent.pop(j))
    wall = time.monotonic() - t0
    cpu = _cpu(pids) - cpu0
    pool.close()
    lat.sort()
    return {
        "workers": len(pids) - 1,
        "items_per_s": len(lat) / wall,
        "wanted_per_s": procs * 2 * rate,
        "latency_ms": [lat[len(lat) // 2] * 1e3, lat[int(len(lat) * 0.99)] * 1e3, lat[-1] * 1e3],
        "max_outstanding": most,
        "cores_used": cpu / wall,
        "memory_mb": [(round(t), r / 2**20, p / 2**20) for t, r, p in mem],
    }


def ideal(kind: str, workers: int, seconds: float) -> dict[str, Any]:
    """The machine's ceiling: ``workers`` forked processes each encoding its own
    copy of the record, no hand-over at all (no design can beat this)."""
    import resource
    import struct

    import threadpoolctl

    from summaryd.daemon import encode

    threadpoolctl.threadpool_limits(1)
    rec, data = _records(kind)
    encode.array_record(rec, data)
    r, w = os.pipe()
    start = time.monotonic() + 1.0  # after everyone's warm-up
    pids = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            while time.monotonic() < start:
                encode.array_record(rec, data)
            cpu0, n = resource.getrusage(resource.RUSAGE_SELF), 0
            while time.monotonic() < start + seconds:
                encode.array_record(rec, data)
                n += 1
            cpu1 = resource.getrusage(resource.RUSAGE_SELF)
            used = cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime
            os.write(w, struct.pack("<Qd", n, used))
            os._exit(0)
        pids.append(pid)
    counts = [struct.unpack("<Qd", os.read(r, 16)) for _ in pids]
    for pid in pids:
        os.waitpid(pid, 0)
    items = sum(n for n, _ in counts)
    return {
        "kind": kind,
        "runtime": "ideal",
        "workers": workers,
        "per_s": items / seconds,
        "cpu_ms": sum(c for _, c in counts) / items * 1e3,
        "loop_cpu_ms": 0.0,
        "rss_mb": 0.0,
        "processes": workers,
    }


def child(kind: str, runtime: str, workers: int, seconds: float) -> dict[str, Any]:
    """One configuration in this process (already pinned by taskset)."""
    import threading

    if runtime == "ideal":
        return ideal(kind, workers, seconds)

    import threadpoolctl

    from summaryd.daemon import encode
    from summaryd.daemon.jobs import EncoderPool

    threadpoolctl.threadpool_limits(1)  # as the daemon's serve()
    rec, ring = _records(kind)
    ready = threading.Event()
    done: list[Any] = []
    worker_pids: list[int] = []
    submit: Callable[[int, bytes], None]
    collect: Callable[[], int]
    if runtime == "processes":
        pool = EncoderPool(workers, wake=ready.set)
        worker_pids = pool.worker_pids()

        def submit(job: int, data: bytes) -> None:
            pool.encode(job, rec, data)

        def collect() -> int:
            res = pool.results()
            bad = [r for _, r in res if isinstance(r, Exception)]
            if bad:
                raise bad[0]
            return len(res)

        close = pool.close
    else:
        tp = ThreadPoolExecutor(workers)

        def _done(fut: Future[bytes]) -> None:
            done.append(fut.result())
            ready.set()

        def submit(job: int, data: bytes) -> None:
            tp.submit(encode.array_record, rec, data).add_done_callback(_done)

        def collect() -> int:
            n = len(done)
            del done[:n]
            return n

        def close() -> None:
            tp.shutdown(wait=True)

    me = os.getpid()
    inflight = 2 * workers + 2
    job = sent = got = 0

    def step() -> None:
        nonlocal job, sent, got
        while sent - got < inflight:
            job += 1
            submit(job, bytes(memoryview(ring)))  # the loop's copy out of the ring
            sent += 1
        ready.wait(1.0)
        ready.clear()
        got += collect()

    t_end = time.monotonic() + min(2.0, seconds / 2)
    while time.monotonic() < t_end:  # warm-up: imports, arenas, glibc's heap
        step()
    if runtime == "processes":
        worker_pids = pool.worker_pids()  # started by now (the warm-up waited for results)
    got0, wall0 = got, time.perf_counter()
    cpu0, me0 = _cpu([*worker_pids, me]), _cpu([me])
    t_end = time.monotonic() + seconds
    while time.monotonic() < t_end:
        step()
    items, wall = got - got0, time.perf_counter() - wall0
    cpu, me_cpu = _cpu([*worker_pids, me]) - cpu0, _cpu([me]) - me0
    rss = _rss([*worker_pids, me])
    close()
    return {
        "kind": kind,
        "runtime": runtime,
        "workers": workers,
        "per_s": items / wall,
        "cpu_ms": cpu / items * 1e3,
        "loop_cpu_ms": me_cpu / items * 1e3,
        "rss_mb": rss / 2**20,
        "processes": 1 + len(worker_pids),
    }


def run_one(cores: str, kind: str, runtime: str, workers: int, seconds: float) -> dict[str, Any]:
    argv = ["taskset", "-c", cores, sys.executable, str(HERE), "--child"]
    argv += [kind, runtime, str(workers), str(seconds)]
    # glibc keeps freed record-sized blocks, as the daemon's serve() makes it
    # (loop._keep_freed_memory): otherwise every copy page-faults fresh memory.
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(64 << 20)}
    env["MALLOC_TRIM_THRESHOLD_"] = str(256 << 20)
    out = subprocess.run(argv, capture_output=True, text=True, check=True, env=env).stdout
    res: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    res["cores"] = cores
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seconds", type=float, default=6.0, help="measured seconds per configuration")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved repetitions (median)")
    ap.add_argument(
        "--runtimes",
        default="processes,threads,ideal",
        help="ideal: forked processes with no hand-over, the machine's ceiling",
    )
    ap.add_argument("--workers", default="1,2", help="worker counts to run")
    ap.add_argument("--json", type=Path, help="write every measurement here")
    ap.add_argument(
        "--keepup", type=float, metavar="S", help="instead: issue 3's keep-up load for S seconds"
    )
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.keepup:
        sys.path.insert(0, str(HERE.parent))
        from machine import describe

        print(describe(("numpy", "zlib-ng", "psutil")))
        res = keepup(args.keepup)
        print(json.dumps(res))
        print(
            f"keep-up: {res['items_per_s']:.1f} of {res['wanted_per_s']:.0f} items/s, "
            f"latency p50/p99/max {'/'.join(f'{x:.0f}' for x in res['latency_ms'])} ms, "
            f"at most {res['max_outstanding']} outstanding, {res['cores_used']:.2f} cores; "
            f"RSS/PSS MB of daemon + {res['workers']} workers over time: "
            + ", ".join(f"{t}s {r:.0f}/{p:.0f}" for t, r, p in res["memory_mb"])
        )
        return
    if args.child:
        kind, runtime, workers, seconds = args.child
        print(json.dumps(child(kind, runtime, int(workers), float(seconds))))
        return
    sys.path.insert(0, str(HERE.parent))
    from machine import describe

    print(describe(("numpy", "zlib-ng", "psutil")))
    counts = [int(w) for w in args.workers.split(",")]
    # 1 core and 2 cores of one runtime back to back, every runtime of a kind in
    # turn: a shared VM's capacity drifts within minutes, so only neighbours compare.
    configs = [
        (cores, kind, runtime, workers)
        for kind in KINDS
        for workers in counts
        for runtime in args.runtimes.split(",")
        for cores in CORES
    ]
    runs: dict[tuple[str, str, str, int], list[dict[str, Any]]] = {c: [] for c in configs}
    for r in range(args.rounds):
        for c in configs:
            runs[c].append(run_one(*c, args.seconds))
        print(f"round {r + 1}/{args.rounds} done, load {os.getloadavg()[0]:.2f}", file=sys.stderr)

    def med(c: tuple[str, str, str, int], key: str) -> float:
        return statistics.median(x[key] for x in runs[c])

    head = f"{'runtime':<10} {'kind':<10} {'workers':>7} {'cores':>5} {'items/s':>8}"
    print(f"\n{head} {'(runs)':<20} {'CPU ms/item':>11} {'loop ms/item':>12} {'RSS MB':>7}")
    for c in configs:
        cores, kind, runtime, workers = c
        each = "/".join(f"{x['per_s']:.0f}" for x in runs[c])
        print(
            f"{runtime:<10} {kind:<10} {workers:>7} {cores:>5} {med(c, 'per_s'):>8.1f} "
            f"{'(' + each + ')':<20} {med(c, 'cpu_ms'):>11.2f} {med(c, 'loop_cpu_ms'):>12.2f} "
            f"{med(c, 'rss_mb'):>7.0f}"
        )
    print()
    print("ratio = 2 cores / 1 core, median of the rounds' back-to-back pairs (each pair)")
    for runtime in args.runtimes.split(","):
        for kind in KINDS:
            for workers in counts:
                one = [x["per_s"] for x in runs[("0", kind, runtime, workers)]]
                two = [x["per_s"] for x in runs[("0,1", kind, runtime, workers)]]
                pairs = [b / a for a, b in zip(one, two, strict=True)]
                print(
                    f"ratio {runtime} {kind} {workers} worker(s): {statistics.median(pairs):.2f}x "
                    f"({' '.join(f'{x:.2f}' for x in pairs)})"
                )
    if args.json:
        args.json.write_text(json.dumps([x for v in runs.values() for x in v], indent=1))


if __name__ == "__main__":
    main()
