#!/usr/bin/env python
"""Scalar logging: summaryd vs torch.utils.tensorboard vs tensorboardX, in one run.

    python benchmarks/bench_scalars.py [--quick] [--json out.json]

Three benchmarks, every writer measured in fresh processes (see README.md):

1. latency     trainer-side cost of ``add_scalar(tag, float, step)``: per-call wall
               latency (p50/p99) and CPU per event of the logging process, including
               its background threads, up to the end of ``close()``; for summaryd also
               the daemon's CPU per event (a separate process).
2. throughput  P processes log K scalars each into ONE log dir, released together by a
               pipe barrier; time until every event is on disk, then every event is read
               back with TensorBoard's own reader and counted.
3. import      wall time of ``python -c "from <pkg> import SummaryWriter"``.

summaryd runs against its own daemon (``serve --foreground``) in a private runtime
directory with a private ring prefix; the script stops it by PID and removes its temp
dirs and rings whatever happens.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import secrets
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from isolated_daemon import IsolatedDaemon  # beside this script
from machine import describe, remove_scratch  # beside this script

HERE = Path(__file__).resolve()
WRITERS = ("summaryd", "torch", "tensorboardX")
IMPORTS = {
    "python (no import)": "pass",
    "summaryd": "from summaryd import SummaryWriter",
    "torch": "from torch.utils.tensorboard import SummaryWriter",
    "tensorboardX": "from tensorboardX import SummaryWriter",
}
FULL = {"n": 200_000, "warmup": 20_000, "k": 10_000, "procs": (1, 4, 16), "import_reps": 5}
# --quick runs P=2 only: every torch or tensorboardX process spends ~4 s importing torch.
QUICK = {"n": 20_000, "warmup": 2_000, "k": 2_000, "procs": (2,), "import_reps": 1}
GOAL_PROCS = 16
GOAL_CPU_RATIO = 20.0
GOAL_P99_US = 20.0
GOAL_THROUGHPUT_RATIO = 10.0


# =============================================================================
# worker side: runs in a fresh interpreter, prints one JSON line on stdout
# =============================================================================


def _make_writer(kind: str, log_dir: str, rank: int | None = None) -> Any:
    if kind == "tensorboardX" and rank is not None:
        # tensorboardX names files events.out.tfevents.<time>.<host><suffix>, without the
        # pid: processes starting in the same second open the same file and overwrite each
        # other's records.  A suffix per rank is what a tensorboardX user has to do.
        from tensorboardX import SummaryWriter as TbxWriter

        return TbxWriter(log_dir, filename_suffix=f".rank{rank}")
    if kind == "summaryd":
        from summaryd import SummaryWriter
    elif kind == "torch":
        from torch.utils.tensorboard import SummaryWriter
    elif kind == "tensorboardX":
        from tensorboardX import SummaryWriter
    else:
        raise ValueError(kind)
    return SummaryWriter(log_dir)


def _dropped(kind: str, w: Any) -> int | None:
    if kind != "summaryd":
        return None
    from summaryd import client

    c = client.current_client()
    return c.statistics().records_dropped if c is not None else None


def worker_latency(a: argparse.Namespace) -> dict[str, Any]:
    """N timed add_scalar calls after a warm-up; CPU up to the end of close()."""
    import psutil

    w = _make_writer(a.writer, a.log_dir)
    daemon = psutil.Process(a.daemon_pid) if a.daemon_pid else None
    n, warm = a.n, a.warmup
    values = [1.0 / (i + 1) for i in range(n)]
    for i in range(warm):
        w.add_scalar("warmup/loss", values[i % n], i)
    w.flush()  # the timed region starts with nothing queued
    gc.collect()
    lat = [0] * n
    add = w.add_scalar
    pc = time.perf_counter_ns
    tag = "train/loss"
    d0 = daemon.cpu_times() if daemon else None
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    c0 = time.process_time()
    t0 = time.perf_counter()
    for i in range(n):
        s = pc()
        add(tag, values[i], i)
        lat[i] = pc() - s
    t_loop = time.perf_counter()
    c_loop = time.process_time()
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    dropped = _dropped(a.writer, w)
    w.close()  # flushes: torch/tbX join their writer thread, summaryd waits for the ack
    t_close = time.perf_counter()
    c1 = time.process_time()
    d1 = daemon.cpu_times() if daemon else None
    # the cost of the timing itself, for reference
    cal = [0] * 100_000
    for i in range(100_000):
        s = pc()
        cal[i] = pc() - s
    lat.sort()
    cal.sort()

    def pct(q: float) -> float:
        return lat[min(n - 1, int(q * n))] / 1000.0

    out: dict[str, Any] = {
        "writer": a.writer,
        "n": n,
        "warmup": warm,
        "p50_us": pct(0.50),
        "p90_us": pct(0.90),
        "p99_us": pct(0.99),
        "p999_us": pct(0.999),
        "max_us": lat[-1] / 1000.0,
        "mean_us": sum(lat) / n / 1000.0,
        "loop_wall_s": t_loop - t0,
        "close_wall_s": t_close - t_loop,
        "cpu_loop_us_per_event": (c_loop - c0) / n * 1e6,
        "cpu_us_per_event": (c1 - c0) / n * 1e6,
        "timer_overhead_us": cal[len(cal) // 2] / 1000.0,
        # off-CPU time in the loop: preempted (involuntary) or blocked (voluntary)
        "loop_involuntary_switches": ru1.ru_nivcsw - ru0.ru_nivcsw,
        "loop_voluntary_switches": ru1.ru_nvcsw - ru0.ru_nvcsw,
        "dropped": dropped,
    }
    if daemon is not None:
        assert d0 is not None and d1 is not None
        out["daemon_cpu_us_per_event"] = ((d1.user + d1.system) - (d0.user + d0.system)) / n * 1e6
    return out


def worker_throughput(a: argparse.Namespace) -> dict[str, Any]:
    """Set up, report ready, wait for the barrier (EOF on a shared pipe), log K, close."""
    w = _make_writer(a.writer, a.log_dir, a.rank)
    tag = f"rank{a.rank}/loss"
    values = [1.0 / (i + 1) for i in range(a.k)]
    gc.collect()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while os.read(a.barrier_fd, 1):  # returns b"" once the parent closes the write end
        pass
    t_start = time.monotonic_ns()
    c0 = time.process_time()
    add = w.add_scalar
    for i in range(a.k):
        add(tag, values[i], i)
    t_logged = time.monotonic_ns()
    dropped = _dropped(a.writer, w)
    w.close()  # every event of this process is in its file when this returns
    t_end = time.monotonic_ns()
    return {
        "rank": a.rank,
        "t_start": t_start,
        "t_logged": t_logged,
        "t_end": t_end,
        "cpu_s": time.process_time() - c0,
        "dropped": dropped,
    }


def worker_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["latency", "throughput"])
    p.add_argument("--writer", required=True, choices=WRITERS)
    p.add_argument("--log-dir", required=True)
    p.add_argument("--n", type=int, default=0)
    p.add_argument("--warmup", type=int, default=0)
    p.add_argument("--k", type=int, default=0)
    p.add_argument("--rank", type=int, default=0)
    p.add_argument("--barrier-fd", type=int, default=-1)
    p.add_argument("--daemon-pid", type=int, default=0)
    a = p.parse_args(argv)
    res = worker_latency(a) if a.mode == "latency" else worker_throughput(a)
    sys.stdout.write("result " + json.dumps(res) + "\n")
    sys.stdout.flush()
    return 0


# =============================================================================
# orchestrator side
# =============================================================================


_PYCACHE: str | None = None


def summaryd_env() -> dict[str, str]:
    """Environment for a process that runs summaryd code.

    summaryd is installed editable, and with PYTHONDONTWRITEBYTECODE set (as here) every
    interpreter would compile its modules from source, which torch and tensorboardX (with
    the .pyc files pip wrote) never do.  A private bytecode cache, removed at the end,
    makes the comparison fair.
    """
    env = dict(os.environ)
    if _PYCACHE is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = _PYCACHE
    return env


def Daemon(tmp: Path, prefix: str, tag: str) -> IsolatedDaemon:
    return IsolatedDaemon(tmp, f"{prefix}-{tag}", env=summaryd_env(), name=f"daemon-{tag}")


def _worker_cmd(mode: str, writer: str, log_dir: Path, **kw: Any) -> list[str]:
    cmd = [
        sys.executable,
        str(HERE),
        "--_worker",
        mode,
        "--writer",
        writer,
        "--log-dir",
        str(log_dir),
    ]
    for k, v in kw.items():
        cmd += [f"--{k.replace('_', '-')}", str(v)]
    return cmd


def _parse_result(out: str, what: str) -> dict[str, Any]:
    for line in out.splitlines():
        if line.startswith("result "):
            return json.loads(line[7:])
    raise RuntimeError(f"{what}: no result in worker output:\n{out[-2000:]}")


def event_files(log_dir: Path) -> list[Path]:
    return sorted(p for p in log_dir.iterdir() if "tfevents" in p.name)


def count_scalars_fast(log_dir: Path) -> int:
    """Scalar events in the dir, framing walked by hand (no CRC): a cheap sanity check."""
    from tensorboard.compat.proto import event_pb2

    n = 0
    for f in event_files(log_dir):
        buf = f.read_bytes()
        o = 0
        while o + 12 <= len(buf):
            (length,) = struct.unpack_from("<Q", buf, o)
            ev = event_pb2.Event.FromString(buf[o + 12 : o + 12 + length])
            n += len(ev.summary.value)
            o += 12 + length + 4
    return n


def read_back(log_dir: Path, ranks: int) -> dict[str, Any]:
    """Every event of every file, read by TensorBoard's own loader (CRC-checked)."""
    from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
    from tensorboard.compat.proto import event_pb2

    per_rank = [0] * ranks
    total = 0
    other = 0
    for f in event_files(log_dir):
        for raw in RawEventFileLoader(str(f)).Load():
            ev = event_pb2.Event.FromString(raw)
            if not ev.HasField("summary"):
                other += 1
                continue
            for v in ev.summary.value:
                total += 1
                per_rank[int(v.tag[4 : v.tag.index("/")])] += 1
    return {"scalars": total, "per_rank": per_rank, "other_events": other}


def bench_latency(cfg: dict[str, Any], tmp: Path, prefix: str) -> list[dict[str, Any]]:
    results = []
    for writer in WRITERS:
        log_dir = tmp / f"lat-{writer}"
        d = None
        env = dict(os.environ)
        kw: dict[str, Any] = {"n": cfg["n"], "warmup": cfg["warmup"]}
        try:
            if writer == "summaryd":
                d = Daemon(tmp, prefix, "lat")
                kw["daemon_pid"] = d.start()
                env = d.env
            t = time.perf_counter()
            r = subprocess.run(
                _worker_cmd("latency", writer, log_dir, **kw),
                env=env,
                capture_output=True,
                text=True,
                timeout=900,
            )
            if r.returncode != 0:
                raise RuntimeError(f"latency worker {writer} failed:\n{r.stderr[-3000:]}")
            res = _parse_result(r.stdout, f"latency {writer}")
        finally:
            if d is not None:
                d.cleanup()
        res["on_disk"] = count_scalars_fast(log_dir)
        res["expected"] = cfg["n"] + cfg["warmup"]
        if res["on_disk"] != res["expected"]:
            raise AssertionError(
                f"latency {writer}: {res['on_disk']} scalars on disk, expected {res['expected']}"
            )
        shutil.rmtree(log_dir, ignore_errors=True)
        results.append(res)
        print(
            f"  latency {writer:>12}: p50 {res['p50_us']:.2f} µs, p99 {res['p99_us']:.2f} µs, "
            f"CPU {res['cpu_us_per_event']:.2f} µs/ev (stage {time.perf_counter() - t:.1f} s)",
            file=sys.stderr,
            flush=True,
        )
    return results


def run_throughput(
    writer: str, procs: int, k: int, tmp: Path, prefix: str, daemons: int = 1
) -> dict[str, Any]:
    """``procs`` processes log ``k`` scalars each into one directory; summaryd's
    through ``daemons`` daemons (simulated nodes sharing the directory: ranks
    round-robin over them)."""
    log_dir = tmp / f"tp-{writer}-{procs}-{daemons}"
    log_dir.mkdir()
    ds: list[IsolatedDaemon] = []
    envs = [dict(os.environ)]
    workers: list[subprocess.Popen[str]] = []
    rfd, wfd = os.pipe()
    try:
        if writer == "summaryd":
            for i in range(daemons):
                ds.append(Daemon(tmp, prefix, f"tp{procs}-{i}"))
                ds[-1].start()
            envs = [d.env for d in ds]
        for rank in range(procs):
            workers.append(
                subprocess.Popen(
                    _worker_cmd("throughput", writer, log_dir, k=k, rank=rank, barrier_fd=rfd),
                    env=envs[rank % len(envs)],
                    pass_fds=(rfd,),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        os.close(rfd)
        rfd = -1
        for p in workers:  # every worker has imported, built its writer and waits
            assert p.stdout is not None
            line = p.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"throughput worker not ready: {line!r} {p.stderr.read()}")
        d_cpu0 = sum(d.cpu_s() for d in ds)
        t0 = time.monotonic_ns()
        os.close(wfd)  # release: every worker's read() returns EOF at once
        wfd = -1
        results = []
        for p in workers:
            out, err = p.communicate(timeout=900)
            if p.returncode != 0:
                raise RuntimeError(f"throughput worker failed ({p.returncode}):\n{err[-3000:]}")
            results.append(_parse_result(out, f"throughput {writer} P={procs}"))
        d_cpu1 = sum(d.cpu_s() for d in ds)
    finally:
        for fd in (rfd, wfd):
            if fd >= 0:
                os.close(fd)
        for p in workers:
            if p.poll() is None:
                p.kill()
                p.wait()
        for d in ds:
            d.cleanup()
    t_end = max(r["t_end"] for r in results)
    elapsed = (t_end - t0) / 1e9
    files = event_files(log_dir)
    t_read = time.perf_counter()
    back = read_back(log_dir, procs)
    t_read = time.perf_counter() - t_read
    expected = procs * k
    if back["scalars"] != expected or any(n != k for n in back["per_rank"]):
        raise AssertionError(
            f"throughput {writer} P={procs}: read back {back['scalars']} scalars "
            f"(per rank {back['per_rank']}), expected {expected}"
        )
    shutil.rmtree(log_dir, ignore_errors=True)
    return {
        "writer": writer,
        "procs": procs,
        "daemons": len(ds),
        "k": k,
        "elapsed_s": elapsed,
        "t0_ns": t0,  # barrier release, time.monotonic_ns()
        "events_per_s": expected / elapsed,
        "release_skew_ms": (max(r["t_start"] for r in results) - t0) / 1e6,
        "log_loop_s": max(r["t_logged"] - t0 for r in results) / 1e9,
        "trainer_cpu_s": sum(r["cpu_s"] for r in results),
        "daemon_cpu_s": (d_cpu1 - d_cpu0) if writer == "summaryd" else None,
        "files": len(files),
        "read_back": back["scalars"],
        "other_events": back["other_events"],
        "read_back_s": t_read,
        "dropped": sum(r["dropped"] or 0 for r in results),
    }


def bench_throughput(cfg: dict[str, Any], tmp: Path, prefix: str) -> list[dict[str, Any]]:
    out = []
    for procs in cfg["procs"]:
        for writer in WRITERS:
            t = time.perf_counter()
            out.append(run_throughput(writer, procs, cfg["k"], tmp, prefix))
            r = out[-1]
            print(
                f"  throughput {writer:>12} P={procs:<2}: {r['events_per_s']:>10,.0f} ev/s "
                f"(stage {time.perf_counter() - t:.1f} s, read-back {r['read_back_s']:.1f} s)",
                file=sys.stderr,
                flush=True,
            )
    return out


def bench_import(cfg: dict[str, Any]) -> list[dict[str, Any]]:
    times: dict[str, list[float]] = {k: [] for k in IMPORTS}
    subprocess.run(
        [sys.executable, "-c", IMPORTS["summaryd"]], check=True, env=summaryd_env()
    )  # fills the bytecode cache if nothing did yet
    # Runs after the other benchmarks, which imported every package many times: the page
    # cache is warm.  Rounds alternate the packages so drifting load hits all alike.
    for _ in range(cfg["import_reps"]):
        for name, stmt in IMPORTS.items():
            t = time.perf_counter()
            subprocess.run(
                [sys.executable, "-c", stmt],
                check=True,
                env=summaryd_env() if name == "summaryd" else None,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            times[name].append(time.perf_counter() - t)
    return [
        {
            "what": name,
            "median_ms": statistics.median(v) * 1e3,
            "min_ms": min(v) * 1e3,
            "max_ms": max(v) * 1e3,
            "runs": len(v),
        }
        for name, v in times.items()
    ]


# -- report ------------------------------------------------------------------------


def _fmt(v: Any, spec: str = ".2f") -> str:
    return "—" if v is None else format(v, spec)


def _table(headers: list[str], rows: list[list[str]]) -> str:
    w = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        padded = (c.ljust(w[i]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(cells))
        return "| " + " | ".join(padded) + " |"

    sep = (
        "|"
        + "|".join("-" * (x + 1) + ":" if i else ":" + "-" * (x + 1) for i, x in enumerate(w))
        + "|"
    )
    return "\n".join([line(headers), sep, *(line(r) for r in rows)])


def report(res: dict[str, Any]) -> str:
    cfg = res["config"]
    out = [f"machine: {res['machine']}", ""]
    lat = {r["writer"]: r for r in res["latency"]}
    out.append(
        f"1. add_scalar, trainer side (N={cfg['n']} timed calls after {cfg['warmup']} "
        f"warm-up; CPU = process_time over loop + close())"
    )
    out.append("")
    out.append(
        _table(
            [
                "writer",
                "p50 µs",
                "p99 µs",
                "p99.9 µs",
                "mean µs",
                "trainer CPU µs/ev",
                "close() ms",
                "daemon CPU µs/ev",
                "on disk",
                "dropped",
            ],
            [
                [
                    r["writer"],
                    _fmt(r["p50_us"]),
                    _fmt(r["p99_us"]),
                    _fmt(r["p999_us"]),
                    _fmt(r["mean_us"]),
                    _fmt(r["cpu_us_per_event"]),
                    _fmt(r["close_wall_s"] * 1e3, ".0f"),
                    _fmt(r.get("daemon_cpu_us_per_event")),
                    str(r["on_disk"]),
                    _fmt(r["dropped"], "d"),
                ]
                for r in res["latency"]
            ],
        )
    )
    out.append(
        f"(timer overhead per call ≈ {lat['summaryd']['timer_overhead_us']:.2f} µs, "
        "included in the latencies and in CPU)"
    )
    out.append(
        "loop wall vs CPU per call (the difference is time off the CPU), context "
        "switches in the loop (involuntary = preempted / voluntary = blocked):"
    )
    for r in res["latency"]:
        out.append(
            f"  {r['writer']:<12} wall {r['loop_wall_s'] / r['n'] * 1e6:7.2f} µs, "
            f"CPU {r['cpu_loop_us_per_event']:7.2f} µs, switches "
            f"{r['loop_involuntary_switches']} / {r['loop_voluntary_switches']}"
        )
    out.append("")
    out.append(
        f"2. aggregate throughput: P processes × K={cfg['k']} scalars into one log dir, "
        "barrier → all events on disk; read back with TensorBoard's RawEventFileLoader"
    )
    out.append("")
    out.append(
        _table(
            [
                "writer",
                "P",
                "elapsed s",
                "events/s",
                "event files",
                "read back",
                "trainer CPU s",
                "daemon CPU s",
                "release skew ms",
            ],
            [
                [
                    r["writer"],
                    str(r["procs"]),
                    _fmt(r["elapsed_s"], ".3f"),
                    _fmt(r["events_per_s"], ",.0f"),
                    str(r["files"]),
                    str(r["read_back"]),
                    _fmt(r["trainer_cpu_s"]),
                    _fmt(r["daemon_cpu_s"]),
                    _fmt(r["release_skew_ms"], ".1f"),
                ]
                for r in res["throughput"]
            ],
        )
    )
    out.append("")
    out.append(f"3. import time (wall, median of {cfg['import_reps']} fresh interpreter runs)")
    out.append("")
    out.append(
        _table(
            ["import", "median ms", "min ms", "max ms"],
            [
                [
                    r["what"],
                    _fmt(r["median_ms"], ".0f"),
                    _fmt(r["min_ms"], ".0f"),
                    _fmt(r["max_ms"], ".0f"),
                ]
                for r in res["imports"]
            ],
        )
    )
    out.append("")
    out.append("ratios")
    out.append("")
    rows = []
    for name, value, goal, ok in res["ratios"]:
        rows.append([name, value, goal, "" if ok is None else ("met" if ok else "NOT MET")])
    out.append(_table(["ratio", "value", "goal", ""], rows))
    return "\n".join(out)


def compute_ratios(res: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    lat = {r["writer"]: r for r in res["latency"]}
    sd, th, tx = lat["summaryd"], lat["torch"], lat["tensorboardX"]
    r: list[tuple[str, str, str, bool | None]] = []
    v = th["cpu_us_per_event"] / sd["cpu_us_per_event"]
    r.append(
        (
            "torch CPU/event ÷ summaryd trainer CPU/event",
            f"{v:.1f}×",
            f"≥ {GOAL_CPU_RATIO:g}×",
            v >= GOAL_CPU_RATIO,
        )
    )
    v = tx["cpu_us_per_event"] / sd["cpu_us_per_event"]
    r.append(("tensorboardX CPU/event ÷ summaryd trainer CPU/event", f"{v:.1f}×", "", None))
    tot = sd["cpu_us_per_event"] + sd.get("daemon_cpu_us_per_event", 0.0)
    v = th["cpu_us_per_event"] / tot
    r.append(("torch CPU/event ÷ summaryd (trainer + daemon) CPU/event", f"{v:.1f}×", "", None))
    r.append(
        (
            "summaryd add_scalar p99",
            f"{sd['p99_us']:.2f} µs",
            f"< {GOAL_P99_US:g} µs",
            sd["p99_us"] < GOAL_P99_US,
        )
    )
    r.append(
        (
            "torch / tensorboardX add_scalar p99",
            f"{th['p99_us']:.1f} / {tx['p99_us']:.1f} µs",
            "",
            None,
        )
    )
    tp = {(x["writer"], x["procs"]): x for x in res["throughput"]}
    for procs in res["config"]["procs"]:
        v = tp[("summaryd", procs)]["events_per_s"] / tp[("torch", procs)]["events_per_s"]
        top = procs == GOAL_PROCS
        r.append(
            (
                f"summaryd events/s ÷ torch events/s, P={procs}",
                f"{v:.2f}×",
                f"≥ {GOAL_THROUGHPUT_RATIO:g}×" if top else "",
                (v >= GOAL_THROUGHPUT_RATIO) if top else None,
            )
        )
        v = tp[("summaryd", procs)]["events_per_s"] / tp[("tensorboardX", procs)]["events_per_s"]
        r.append((f"summaryd events/s ÷ tensorboardX events/s, P={procs}", f"{v:.2f}×", "", None))
    imp = {x["what"]: x["median_ms"] for x in res["imports"]}
    r.append(
        (
            "import: summaryd / torch / tensorboardX",
            f"{imp['summaryd']:.0f} / {imp['torch']:.0f} / {imp['tensorboardX']:.0f} ms",
            "",
            None,
        )
    )
    r.append(("import: torch ÷ summaryd", f"{imp['torch'] / imp['summaryd']:.1f}×", "", None))
    return r


def machine() -> str:
    return describe(
        (
            "summaryd",
            "torch",
            "tensorboardX",
            "tensorboard",
        )
    )


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--_worker":
        return worker_main(sys.argv[2:])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes (< 1 min)")
    p.add_argument("--json", metavar="PATH", help="also write every figure as JSON")
    p.add_argument("-n", type=int, help="timed add_scalar calls per writer (latency)")
    p.add_argument("-k", type=int, help="scalars per process (throughput)")
    p.add_argument("--procs", help="comma-separated process counts (throughput)")
    a = p.parse_args()
    cfg = dict(QUICK if a.quick else FULL)
    if a.n:
        cfg["n"] = a.n
        cfg["warmup"] = max(1, a.n // 10)
    if a.k:
        cfg["k"] = a.k
    if a.procs:
        cfg["procs"] = tuple(int(x) for x in a.procs.split(","))
    prefix = "sdbench-" + secrets.token_hex(4)  # rings: /dev/shm/<prefix>-<daemon>.*
    tmp = Path(tempfile.mkdtemp(prefix="sdbench-"))
    global _PYCACHE
    _PYCACHE = str(tmp / "pycache")
    t_all = time.perf_counter()
    try:
        res: dict[str, Any] = {
            "config": {**cfg, "procs": list(cfg["procs"])},
            "machine": machine(),
        }
        print("running latency ...", file=sys.stderr, flush=True)
        res["latency"] = bench_latency(cfg, tmp, prefix)
        print("running throughput ...", file=sys.stderr, flush=True)
        res["throughput"] = bench_throughput(cfg, tmp, prefix)
        print("running import ...", file=sys.stderr, flush=True)
        res["imports"] = bench_import(cfg)
        res["ratios"] = compute_ratios(res)
        res["wall_s"] = time.perf_counter() - t_all
    finally:
        remove_scratch(tmp, prefix)
    print(report(res))
    print(f"\n(total {res['wall_s']:.0f} s)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
