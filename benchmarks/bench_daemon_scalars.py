#!/usr/bin/env python
"""The daemon's scalar hot loop alone: ring records in, event-file bytes out, CPU per record.

    python benchmarks/bench_daemon_scalars.py [--n 200000] [--tags 4] [--text 0.0] [--repeat 5]

A real ring (``/dev/shm``, unlinked at once) is filled with N records packed as the SDK
packs them (``add_scalar(tag, float, step)`` with ``tags`` tags cycling, a ``text``
fraction of ``add_text``), then drained as the daemon drains it, 1 MiB per cycle
(``loop.DRAIN_BUDGET``), three ways:

* ``per-record``: ``Ring.read_batch`` + the core's per-record body as it is today
  (``decode_record`` -> ``RECORD_ENCODERS[kind]`` -> the run's pending list and
  bookkeeping) + one ``b"".join`` per run per cycle;
* ``batched``: ``Ring.read_batch`` + ``batch.encode_batch`` + the hot loop the core
  should run (the snippet in ``daemon/batch.py``'s docstring), same bookkeeping;
* ``read_batch`` alone, for reference.

Both ways must give the same bytes (checked).  CPU is ``time.process_time`` of this
process (no I/O: the bytes stay in memory), the best of ``repeat`` passes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import msgpack

from summaryd import wire
from summaryd.daemon import batch, encode
from summaryd.daemon.arrays import decode_record
from summaryd.ring import Ring, create_ring

BUDGET = 1 << 20  # daemon/loop.py's DRAIN_BUDGET


class Run:
    """The fields of ``core.Run`` the hot loop touches."""

    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        self.pending: list[bytes] = []
        self.oldest = 0.0
        self.upto: dict[str, int] = {}
        self.tags: dict[str, str] = {}
        self.clients: set[str] = set()


def fill(n: int, tags: int, text: float) -> Ring:
    path = f"/dev/shm/sdbench-hot-{os.getpid()}"
    ring = create_ring(path, max(1 << 20, n * 128), os.getpid(), 0, b"0" * 16)
    os.unlink(path)
    put = ring.make_put(lambda bell: None)
    pack = msgpack.Packer(use_bin_type=True).pack
    names = [f"rank0/metric{k}" for k in range(tags)]
    every = int(1 / text) if text else 0
    t0 = time.time()
    for i in range(n):
        if every and i % every == 0:
            rec: tuple[Any, ...] = (wire.TEXT, 1, "notes", f"step {i}: ok", i, t0 + i * 1e-6)
        else:
            rec = (wire.SCALAR, 1, names[i % tags], 1.0 / (i + 1), i, t0 + i * 1e-6)
        if not put(pack(rec)):
            raise RuntimeError("ring too small")
    return ring


def per_record(ring: Ring, out: list[bytes]) -> int:
    writers = {1: Run(1)}
    cid, now, unwritten, n = "c", 0.0, {}, 0
    decode, encoders = decode_record, encode.RECORD_ENCODERS
    while True:
        starts, payloads = ring.read_batch(BUDGET)
        if not payloads:
            break
        for start, payload in zip(starts, payloads, strict=True):
            rec = decode(payload)
            enc = encoders.get(rec[0])
            run = writers[rec[1]]
            if run.tags.get(rec[2]) != cid:
                run.tags[rec[2]] = cid
            data = enc(rec)
            pending = run.pending
            if not pending:
                run.oldest = now
            pending.append(data)
            run.upto[cid] = start + 1
            if run.run_id not in unwritten:
                unwritten[run.run_id] = start
                run.clients.add(cid)
            n += 1
        for run in writers.values():
            out.append(b"".join(run.pending))
            run.pending.clear()
    return n


def batched(ring: Ring, out: list[bytes]) -> int:
    writers = {1: Run(1)}
    cid, now, unwritten, n = "c", 0.0, {}, 0
    encode_batch = batch.encode_batch
    while True:
        starts, payloads = ring.read_batch(BUDGET)
        if not payloads:
            break
        for wid, first, count, data, tags in encode_batch(payloads):
            run = writers.get(wid) if wid is not None else None
            if run is None:
                raise AssertionError("the benchmark's records all take the fast path")
            for tag in tags or ():
                if run.tags.get(tag) != cid:
                    run.tags[tag] = cid
            if not run.pending:
                run.oldest = now
            run.pending.append(data or b"")
            run.upto[cid] = starts[first + count - 1] + 1
            if run.run_id not in unwritten:
                unwritten[run.run_id] = starts[first]
                run.clients.add(cid)
            n += count
        for run in writers.values():
            out.append(b"".join(run.pending))
            run.pending.clear()
    return n


def read_only(ring: Ring, out: list[bytes]) -> int:
    n = 0
    while True:
        _, payloads = ring.read_batch(BUDGET)
        if not payloads:
            return n
        n += len(payloads)


def measure(ring: Ring, fn: Callable[[Ring, list[bytes]], int], repeat: int) -> tuple[float, bytes]:
    best = float("inf")
    data = b""
    for _ in range(repeat):
        ring.read_pos = 0
        out: list[bytes] = []
        c0 = time.process_time()
        n = fn(ring, out)
        c1 = time.process_time()
        best = min(best, (c1 - c0) / n * 1e9)
        data = b"".join(out)
    return best, data


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    p.add_argument("--n", type=int, default=200_000)
    p.add_argument("--tags", type=int, default=4)
    p.add_argument("--text", type=float, default=0.0, help="fraction of add_text records")
    p.add_argument("--repeat", type=int, default=5)
    a = p.parse_args()
    ring = fill(a.n, a.tags, a.text)
    load = os.getloadavg()
    print(
        f"N={a.n} records ({a.tags} tags, text fraction {a.text}), 1 MiB per cycle; "
        f"C batch module: {'yes' if batch.COMPILED else 'NO (per-record fallback)'}; "
        f"load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, {os.cpu_count()} cores"
    )
    old_ns, old = measure(ring, per_record, a.repeat)
    new_ns, new = measure(ring, batched, a.repeat)
    read_ns, _ = measure(ring, read_only, a.repeat)
    if old != new:
        print("MISMATCH: the batched bytes differ from the per-record bytes", file=sys.stderr)
        return 1
    print(f"  per-record (today's core body)  {old_ns:7.0f} ns/record")
    print(f"  batched (encode_batch hot loop) {new_ns:7.0f} ns/record   ({old_ns / new_ns:.1f}x)")
    print(f"  of which Ring.read_batch        {read_ns:7.0f} ns/record")
    print(f"  identical bytes: {len(new):,} bytes")
    ring.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
