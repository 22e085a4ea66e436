"""Two nodes, one directory: scalars through two daemons into one shared run.

Simulated nodes on this machine: each daemon has its own runtime dir and ring
prefix; half the trainer processes report to each.  All write one log dir, as
ranks of a multi-node job on a shared filesystem.  Compared in the same run
with torch's writer (one file per process) and with one daemon (the cost of
sharing the file: a lock per write).  Every scalar is read back with
TensorBoard's loader; the summaryd runs must leave ONE event file.

    python benchmarks/bench_shared_dir.py [--procs 8] [-k 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
from pathlib import Path

import bench_scalars  # beside this script
from machine import describe, remove_scratch


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--procs", type=int, default=8, help="trainer processes in all")
    p.add_argument("-k", type=int, default=10000, help="scalars per process")
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()
    prefix = "sdbench-" + secrets.token_hex(4)
    tmp = Path(tempfile.mkdtemp(prefix="sdbench-shared-"))
    bench_scalars._PYCACHE = str(tmp / "pycache")
    cases = [("torch", 1), ("summaryd", 1), ("summaryd", 2)]
    rates: dict[tuple[str, int], list[float]] = {c: [] for c in cases}
    files: dict[tuple[str, int], int] = {}
    print(describe(("torch", "tensorboard")), flush=True)
    try:
        for _ in range(a.repeat):
            for writer, daemons in cases:  # interleaved: the machine's drift hits all
                r = bench_scalars.run_throughput(writer, a.procs, a.k, tmp, prefix, daemons)
                rates[(writer, daemons)].append(r["events_per_s"])
                files[(writer, daemons)] = r["files"]
    finally:
        remove_scratch(tmp, prefix)
    torch = statistics.median(rates[("torch", 1)])
    print(f"\n{a.procs} processes x {a.k:,} scalars into one directory, median of {a.repeat}")
    print("| writer | daemons | events/s (median) | runs | event files | vs torch |")
    print("|:--|--:|--:|:--|--:|--:|")
    for writer, daemons in cases:
        med = statistics.median(rates[(writer, daemons)])
        runs = ", ".join(f"{x:,.0f}" for x in rates[(writer, daemons)])
        print(
            f"| {writer} | {daemons if writer == 'summaryd' else '-'} | {med:,.0f} | {runs} "
            f"| {files[(writer, daemons)]} | {med / torch:.1f}x |"
        )
    one, two = (statistics.median(rates[("summaryd", n)]) for n in (1, 2))
    print(f"\ntwo daemons sharing the file / one daemon: {two / one:.2f}")
    print("load after: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
