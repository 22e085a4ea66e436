#!/usr/bin/env python
"""Frameworks: a Lightning loop that logs every step, and the start-up hook's cost.

    python benchmarks/bench_frameworks.py [--quick] [--json out.json]

Two benchmarks, every variant in fresh interpreters (see README.md):

1. lightning  ``Trainer.fit`` of a tiny module (Linear(4, 2), batch 8) that calls
              ``self.log`` four times per step, ``log_every_n_steps=1``; five
              variants, alternating in each round: no logger (the baseline),
              ``TensorBoardLogger`` with torch's writer, the same with
              ``SUMMARYD_PATCH=1`` (summaryd's writer, a private daemon), and both
              again without the ``flush()`` Lightning makes after every logging
              step (``-noflush``).  Per step: wall time and process CPU (all
              threads: torch's writer thread too) over the timed steps; logging
              cost = variant - baseline.
2. startup    ``python -c pass`` with the package installed and SUMMARYD_PATCH unset,
              against the same with the hook's ``.pth`` left out (how: README.md);
              the in-process cost of processing that ``.pth``; ``-X importtime``
              loads no summaryd module.

The daemon runs in a private runtime directory with a private ring prefix; the
script stops it by PID and removes its temp dirs and rings whatever happens.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from isolated_daemon import IsolatedDaemon  # beside this script
from machine import describe, remove_scratch  # beside this script

HERE = Path(__file__).resolve()
VARIANTS = ("baseline", "torch", "summaryd", "torch-noflush", "summaryd-noflush")
PAIRS = (("torch", "summaryd"), ("torch-noflush", "summaryd-noflush"))
FULL = {"steps": 2000, "warmup": 200, "rounds": 3, "startup_runs": 30, "pth_calls": 2000}
QUICK = {"steps": 500, "warmup": 100, "rounds": 1, "startup_runs": 20, "pth_calls": 500}
PTH = "summaryd-patch.pth"

# Both start-up variants run the site module by hand (``-S``, then ``site.main()``)
# with one ``.pth`` file name filtered out: ``summaryd-patch.pth`` (hook left out)
# or a name no file has (hook in): the same code path, the same -c string length.
SITE_FILTERED = (
    "import site; _a = site.addpackage; "
    "site.addpackage = lambda d, n, k: None if n == {name!r} else _a(d, n, k); site.main()"
)

_MODULES_AT_START = (
    "import json, sys; print(json.dumps(sorted(m for m in sys.modules if 'summaryd' in m)))"
)


# =============================================================================
# worker side: runs in a fresh interpreter, prints one JSON line on stdout
# =============================================================================


def worker_lightning(a: argparse.Namespace) -> dict[str, Any]:
    """Fit ``warmup + steps`` steps; time the last ``steps`` (from the start of batch
    ``warmup`` to ``on_train_end``, before the logger is closed)."""
    import warnings

    import lightning as L
    import psutil
    import torch
    from lightning.pytorch.loggers import TensorBoardLogger
    from torch.utils.data import DataLoader, TensorDataset

    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    torch.set_num_threads(1)
    L.seed_everything(0, verbose=False)
    daemon = psutil.Process(a.daemon_pid) if a.daemon_pid else None
    marks: dict[str, float] = {}
    inside: dict[str, Any] = {"on": False, "wall": 0.0, "cpu": 0.0}

    def timed(f: Any) -> Any:
        def call(*args: Any, **kw: Any) -> Any:
            if not inside["on"]:
                return f(*args, **kw)
            w, c = time.perf_counter(), time.thread_time()
            try:
                return f(*args, **kw)
            finally:
                inside["wall"] += time.perf_counter() - w
                inside["cpu"] += time.thread_time() - c

        return call

    class Tiny(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(4, 2)

        def training_step(self, batch: list[torch.Tensor], i: int) -> torch.Tensor:
            x, y = batch
            logits = self.layer(x)
            loss = torch.nn.functional.cross_entropy(logits, y)
            self.log("train/loss", loss)
            self.log("train/acc", (logits.argmax(1) == y).float().mean())
            self.log("train/lr", 0.1)
            self.log("train/batch", float(i))
            return loss

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    def mark(name: str) -> None:
        marks[name + "_wall"] = time.perf_counter()
        marks[name + "_cpu"] = time.process_time()
        marks[name + "_main"] = time.thread_time()  # this (the training) thread only
        if daemon is not None:
            t = daemon.cpu_times()
            marks[name + "_daemon"] = t.user + t.system

    class Timer(L.Callback):
        def on_train_batch_start(self, trainer: Any, module: Any, batch: Any, i: int) -> None:
            if i == a.warmup:
                mark("t0")
                inside["on"] = True

        def on_train_end(self, trainer: Any, module: Any) -> None:
            mark("t1")
            inside["on"] = False

    n = a.warmup + a.steps
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8 * n, 4, generator=g)
    y = (x.sum(1) > 0).long()
    loader = DataLoader(TensorDataset(x, y), batch_size=8)

    class NoFlushLogger(TensorBoardLogger):
        """Lightning calls ``logger.save()`` (the writer's ``flush()``) after every
        ``log_metrics``; this one does not (``finalize`` still closes the writer)."""

        def save(self) -> None:
            pass

    logger: Any = False
    if a.variant != "baseline":
        cls = NoFlushLogger if a.variant.endswith("-noflush") else TensorBoardLogger
        logger = cls(a.log_dir, name="bench", version=0)
        # The profile: time in the calls Lightning makes to the logger each step.
        for method in ("log_metrics", "save"):
            setattr(logger, method, timed(getattr(logger, method)))
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=1,
        logger=logger,
        log_every_n_steps=1,
        callbacks=[Timer()],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    t_fit = time.perf_counter()
    trainer.fit(Tiny(), loader)
    mark("t2")  # the logger closed: every event in its file
    writer = None
    if logger:
        writer = f"{type(logger.experiment).__module__}.{type(logger.experiment).__name__}"
    steps = a.steps
    out: dict[str, Any] = {
        "variant": a.variant,
        "writer": writer,
        "steps": steps,
        "warmup": a.warmup,
        "step_wall_us": (marks["t1_wall"] - marks["t0_wall"]) / steps * 1e6,
        "step_cpu_us": (marks["t1_cpu"] - marks["t0_cpu"]) / steps * 1e6,
        "close_ms": (marks["t2_wall"] - marks["t1_wall"]) * 1e3,
        # the training thread's time inside logger.log_metrics + logger.save
        "in_logger_wall_us": inside["wall"] / steps * 1e6,
        "in_logger_cpu_us": inside["cpu"] / steps * 1e6,
        # CPU of every other thread of the trainer (torch's writer thread)
        "other_threads_cpu_us": (
            (marks["t1_cpu"] - marks["t0_cpu"]) - (marks["t1_main"] - marks["t0_main"])
        )
        / steps
        * 1e6,
        "fit_s": marks["t2_wall"] - t_fit,
    }
    if daemon is not None:
        out["daemon_cpu_us_per_step"] = (marks["t1_daemon"] - marks["t0_daemon"]) / steps * 1e6
    return out


def worker_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["lightning"])
    p.add_argument("--variant", required=True, choices=VARIANTS)
    p.add_argument("--log-dir", required=True)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--warmup", type=int, required=True)
    p.add_argument("--daemon-pid", type=int, default=0)
    a = p.parse_args(argv)
    res = worker_lightning(a)
    sys.stdout.write("result " + json.dumps(res) + "\n")
    sys.stdout.flush()
    return 0


# =============================================================================
# orchestrator side
# =============================================================================


def _parse_result(out: str, what: str) -> dict[str, Any]:
    for line in out.splitlines():
        if line.startswith("result "):
            res: dict[str, Any] = json.loads(line[7:])
            return res
    raise RuntimeError(f"{what}: no result in worker output:\n{out[-2000:]}")


def base_env(pycache: str) -> dict[str, str]:
    """This environment without SUMMARYD_PATCH; summaryd is installed editable and
    PYTHONDONTWRITEBYTECODE is set here, so a private bytecode cache (removed at the
    end) spares summaryd processes a compile of its sources that torch never pays."""
    env = {k: v for k, v in os.environ.items() if k != "SUMMARYD_PATCH"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = pycache
    env["OMP_NUM_THREADS"] = "1"
    return env


def count_scalars(log_dir: Path) -> dict[str, int]:
    """Scalar points per tag in every event file under ``log_dir``, read by TensorBoard."""
    from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
    from tensorboard.compat.proto import event_pb2

    n: dict[str, int] = {}
    for f in sorted(p for p in log_dir.rglob("*") if "tfevents" in p.name):
        for raw in RawEventFileLoader(str(f)).Load():
            for v in event_pb2.Event.FromString(raw).summary.value:
                n[v.tag] = n.get(v.tag, 0) + 1
    return n


def bench_lightning(cfg: dict[str, Any], tmp: Path, prefix: str) -> dict[str, Any]:
    pycache = str(tmp / "pycache")
    d = IsolatedDaemon(tmp, f"{prefix}-lt", env=base_env(pycache), name="daemon-lightning")
    runs: list[dict[str, Any]] = []
    try:
        daemon_pid = d.start()
        for rnd in range(cfg["rounds"]):
            for variant in VARIANTS:
                log_dir = tmp / f"lt-{variant}-{rnd}"
                env = dict(d.env)
                if variant.startswith("summaryd"):
                    env["SUMMARYD_PATCH"] = "1"
                cmd = [sys.executable, str(HERE), "--_worker", "lightning"]
                cmd += ["--variant", variant, "--log-dir", str(log_dir)]
                cmd += ["--steps", str(cfg["steps"]), "--warmup", str(cfg["warmup"])]
                if variant.startswith("summaryd"):
                    cmd += ["--daemon-pid", str(daemon_pid)]
                r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
                if r.returncode != 0:
                    raise RuntimeError(f"lightning {variant} failed:\n{r.stderr[-3000:]}")
                res = _parse_result(r.stdout, f"lightning {variant}")
                res["round"] = rnd
                if variant != "baseline":
                    on_disk = count_scalars(log_dir)
                    want = cfg["warmup"] + cfg["steps"]
                    if on_disk.get("train/loss") != want:
                        raise AssertionError(f"lightning {variant}: {on_disk}, expected {want}")
                    res["scalars_on_disk"] = sum(on_disk.values())
                shutil.rmtree(log_dir, ignore_errors=True)
                runs.append(res)
                print(
                    f"  round {rnd} {variant:>16}: {res['step_wall_us']:.0f} µs/step wall, "
                    f"{res['step_cpu_us']:.0f} µs/step CPU, "
                    f"in logger {res.get('in_logger_wall_us', 0):.0f} µs, "
                    f"close {res['close_ms']:.1f} ms",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        d.cleanup()
    med: dict[str, dict[str, float]] = {}
    for v in VARIANTS:
        rs = [r for r in runs if r["variant"] == v]
        keys = ["step_wall_us", "step_cpu_us", "close_ms", "fit_s", "other_threads_cpu_us"]
        keys += ["in_logger_wall_us", "in_logger_cpu_us"] if v != "baseline" else []
        keys += ["daemon_cpu_us_per_step"] if v.startswith("summaryd") else []
        med[v] = {k: statistics.median(r[k] for r in rs) for k in keys}
    b = med["baseline"]
    for v in VARIANTS[1:]:
        m = med[v]
        m["delta_wall_us"] = m["step_wall_us"] - b["step_wall_us"]
        # the trainer's CPU in logging, profiled: the training thread inside the logger,
        # plus other threads' CPU beyond the baseline's (torch's writer thread)
        m["trainer_log_cpu_us"] = m["in_logger_cpu_us"] + max(
            0.0, m["other_threads_cpu_us"] - b["other_threads_cpu_us"]
        )

    def ratio(x: float, y: float) -> float | None:
        return x / y if y > 0 else None

    ratios = {}
    for tv, sv in PAIRS:
        t, s = med[tv], med[sv]
        ratios[sv] = {
            "step_wall": ratio(t["step_wall_us"], s["step_wall_us"]),
            "in_logger_wall": ratio(t["in_logger_wall_us"], s["in_logger_wall_us"]),
            "trainer_log_cpu": ratio(t["trainer_log_cpu_us"], s["trainer_log_cpu_us"]),
            "log_cpu_with_daemon": ratio(
                t["trainer_log_cpu_us"], s["trainer_log_cpu_us"] + s["daemon_cpu_us_per_step"]
            ),
        }
    writers = sorted({r["writer"] for r in runs if r["writer"]})
    return {"runs": runs, "median": med, "ratios": ratios, "writers": writers}


def _site_packages_pth() -> Path:
    import site

    for d in site.getsitepackages():
        p = Path(d) / PTH
        if p.exists():
            return p
    raise RuntimeError(f"{PTH} is not installed in {site.getsitepackages()}: pip install -e .")


def bench_startup(cfg: dict[str, Any], pycache: str) -> dict[str, Any]:
    pth = _site_packages_pth()
    env = {k: v for k, v in os.environ.items() if k != "SUMMARYD_PATCH"}
    variants = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "hook in (-S, site.main())": [
            sys.executable,
            "-S",
            "-c",
            SITE_FILTERED.format(name="no-such-file.pth"),
        ],
        "hook left out (-S, site.main())": [
            sys.executable,
            "-S",
            "-c",
            SITE_FILTERED.format(name=PTH),
        ],
    }
    times: dict[str, list[float]] = {k: [] for k in variants}
    for cmd in variants.values():  # warm the page cache once
        subprocess.run(cmd, env=env, check=True)
    for _ in range(cfg["startup_runs"]):
        for name, cmd in variants.items():
            t = time.perf_counter()
            subprocess.run(cmd, env=env, check=True)
            times[name].append((time.perf_counter() - t) * 1e3)
    # For reference: the hook switched on (imports summaryd.patching, installs the finder).
    env_on = dict(env, SUMMARYD_PATCH="1", PYTHONPYCACHEPREFIX=pycache)
    env_on.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([sys.executable, "-c", "pass"], env=env_on, check=True)  # fill the cache
    on_times = []
    for _ in range(cfg["startup_runs"]):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], env=env_on, check=True)
        on_times.append((time.perf_counter() - t) * 1e3)
    # The .pth alone, in this process: site's own processing of the file (read, exec
    # of its one line, which reads an unset variable), N times.
    import site

    n: int = cfg["pth_calls"]
    saved = dict(os.environ)
    os.environ.pop("SUMMARYD_PATCH", None)
    empty = Path(tempfile.mkdtemp(prefix="sdbench-pth-"))
    try:
        (empty / "empty.pth").write_text("\n")  # the floor: site opening a .pth at all

        def per_call(d: Path, name: str) -> float:
            t: float = time.perf_counter()
            for _ in range(n):
                site.addpackage(str(d), name, set())
            return float(time.perf_counter() - t) / n * 1e6

        pth_us, empty_us = per_call(pth.parent, PTH), per_call(empty, "empty.pth")
    finally:
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(empty, ignore_errors=True)
    r = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "pass"], env=env, capture_output=True, text=True
    )
    # setuptools' editable install imports its own finder, __editable___summaryd_*_finder,
    # from its own .pth (with or without the hook): not a summaryd module.
    loaded = [ln for ln in r.stderr.splitlines() if "summaryd" in ln]
    ours = [ln for ln in loaded if "__editable__" not in ln]
    r = subprocess.run(
        [sys.executable, "-c", _MODULES_AT_START],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return {
        "pth": str(pth),
        "pth_line": pth.read_text().strip(),
        "runs": cfg["startup_runs"],
        "median_ms": {k: statistics.median(v) for k, v in times.items()},
        "p10_p90_ms": {
            k: (statistics.quantiles(v, n=10)[0], statistics.quantiles(v, n=10)[-1])
            for k, v in times.items()
        },
        "pth_us_in_process": pth_us,
        "empty_pth_us_in_process": empty_us,
        "importtime_summaryd_lines": loaded,
        "importtime_summaryd_modules": ours,
        "summaryd_modules_at_start": json.loads(r.stdout),
        "patch_on_median_ms": statistics.median(on_times),
    }


def machine() -> str:
    return describe(
        (
            "summaryd",
            "torch",
            "lightning",
            "tensorboard",
        )
    )


def report(res: dict[str, Any]) -> str:
    out = [f"{res['machine']}; load at the end {res.get('load_end', '?')}"]
    if "lightning" in res:
        out += report_lightning(res)
    if "startup" in res:
        out += report_startup(res)
    return "\n".join(out)


def report_lightning(res: dict[str, Any]) -> list[str]:
    lt = res["lightning"]
    cfg = res["config"]
    m = lt["median"]
    out = [
        "",
        f"1. Lightning Trainer.fit, Linear(4, 2), batch 8, 4 x self.log per step, "
        f"log_every_n_steps=1; {cfg['steps']} timed steps after {cfg['warmup']}; "
        f"median of {cfg['rounds']} round(s); µs per step",
        "   step wall/CPU: the whole step (CPU of every thread); in logger: the training "
        "thread inside Lightning's logger.log_metrics + logger.save;",
        "   trainer logging CPU = in logger CPU + other threads' CPU beyond the baseline's "
        "(torch's writer thread); close: fit's end to the logger closed",
        f"   writers: {', '.join(lt['writers'])}",
        "",
        "| variant          | step wall | step CPU | Δ wall vs baseline | in logger wall | "
        "in logger CPU | other threads CPU | trainer logging CPU | daemon CPU | close ms |",
        "|:-----------------|----------:|---------:|-------------------:|---------------:|"
        "--------------:|------------------:|--------------------:|-----------:|---------:|",
    ]

    def f(r: dict[str, float], k: str) -> str:
        return f"{r[k]:.0f}" if k in r else "—"

    for v in VARIANTS:
        r = m[v]
        cells = [f(r, "step_wall_us"), f(r, "step_cpu_us"), f(r, "delta_wall_us")]
        cells += [f(r, "in_logger_wall_us"), f(r, "in_logger_cpu_us")]
        cells += [f(r, "other_threads_cpu_us"), f(r, "trainer_log_cpu_us")]
        cells += [f(r, "daemon_cpu_us_per_step"), f"{r['close_ms']:.1f}"]
        out.append(f"| {v:<16} | " + " | ".join(cells) + " |")

    def x(v: float | None) -> str:
        return f"{v:.1f}×" if v is not None else "n/a (below noise)"

    out.append("")
    for tv, sv in PAIRS:
        ra = lt["ratios"][sv]
        out.append(
            f"   {tv} ÷ {sv}: step wall {x(ra['step_wall'])}, "
            f"in logger wall {x(ra['in_logger_wall'])}, "
            f"trainer logging CPU {x(ra['trainer_log_cpu'])}, "
            f"incl. the daemon's CPU {x(ra['log_cpu_with_daemon'])}"
        )
    return out


def report_startup(res: dict[str, Any]) -> list[str]:
    out = []
    st = res["startup"]
    out += [
        "",
        f"2. start-up, SUMMARYD_PATCH unset; median of {st['runs']} fresh interpreters each, "
        "variants alternating",
        f"   hook: {st['pth']}",
        f"         {st['pth_line']}",
        "",
        "| command                          | median ms | p10 ms | p90 ms |",
        "|:---------------------------------|----------:|-------:|-------:|",
    ]
    for k, v in st["median_ms"].items():
        lo, hi = st["p10_p90_ms"][k]
        out.append(f"| {k:<32} | {v:9.2f} | {lo:6.2f} | {hi:6.2f} |")
    med = st["median_ms"]
    named = [ln.split("|")[-1].strip() for ln in st["importtime_summaryd_lines"]]
    out += [
        "",
        f"   hook in - hook left out: "
        f"{med['hook in (-S, site.main())'] - med['hook left out (-S, site.main())']:+.2f} ms "
        "(medians)",
        f"   site.addpackage of the hook's .pth, in-process: {st['pth_us_in_process']:.1f} µs "
        f"(of an empty .pth: {st['empty_pth_us_in_process']:.1f} µs)",
        f"   python -X importtime -c pass: summaryd modules {st['importtime_summaryd_modules']} "
        f"(lines naming summaryd: {named}); sys.modules at start: "
        f"{st['summaryd_modules_at_start']}",
        f"   for reference, SUMMARYD_PATCH=1 python -c pass: {st['patch_on_median_ms']:.2f} ms "
        "(median)",
    ]
    return out


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--_worker":
        return worker_main(sys.argv[2:])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes (~2 min)")
    p.add_argument("--json", metavar="PATH", help="also write every figure as JSON")
    p.add_argument("--steps", type=int, help="timed Lightning steps per run")
    p.add_argument("--rounds", type=int, help="Lightning rounds (each runs every variant)")
    p.add_argument("--only", choices=["lightning", "startup"], help="run one benchmark")
    a = p.parse_args()
    cfg = dict(QUICK if a.quick else FULL)
    if a.steps:
        cfg["steps"] = a.steps
    if a.rounds:
        cfg["rounds"] = a.rounds
    prefix = "sdbench-" + secrets.token_hex(4)
    tmp = Path(tempfile.mkdtemp(prefix="sdbench-fw-"))
    t_all = time.perf_counter()
    try:
        res: dict[str, Any] = {"config": cfg, "machine": machine()}
        if a.only != "lightning":
            print("running start-up ...", file=sys.stderr, flush=True)
            res["startup"] = bench_startup(cfg, str(tmp / "pycache"))
        if a.only != "startup":
            print("running lightning ...", file=sys.stderr, flush=True)
            res["lightning"] = bench_lightning(cfg, tmp, prefix)
        res["wall_s"] = time.perf_counter() - t_all
        res["load_end"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
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
