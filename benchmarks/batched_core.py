#!/usr/bin/env python
"""A daemon whose ``Core.batch`` runs the batched hot loop (``daemon/batch.py``): a prototype.

    python benchmarks/batched_core.py serve --foreground ...   (the ``summaryd`` arguments)

The core is being rewritten elsewhere; until it calls ``batch.encode_batch`` itself, this
script measures what that hot loop gives in the real daemon: it replaces ``Core.batch`` by
the loop of ``daemon/batch.py``'s docstring (records the C code declines go through the
core's own per-record body, unchanged) and then runs the daemon's CLI.  ``bench_scalars.py
--hot-loop batched`` starts its daemons this way (``BatchedDaemon``).  Benchmark use only.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from isolated_daemon import IsolatedDaemon  # beside this script


def install() -> None:
    from summaryd.daemon import core, encode
    from summaryd.daemon.arrays import decode_record
    from summaryd.daemon.batch import encode_batch

    original = core.Core.batch

    def batch(
        self: Any,
        cid: str,
        starts: list[int],
        payloads: list[bytes | memoryview],
        end: int,
        now: float,
    ) -> None:
        c = self.clients[cid]
        if not payloads:
            return
        writers = c.writers
        replay = c.replay_until
        unwritten = c.unwritten
        n = 0
        for wid, first, count, data, tags in encode_batch(payloads):
            run = writers.get(wid) if data is not None else None
            if run is None or starts[first] < replay:
                # The per-record body, as Core.batch has it (declined records, unknown
                # writers, replay after a restart).
                c_drained, c_records, total = c.drained, c.records, self.records_total
                original(
                    self,
                    cid,
                    starts[first : first + count],
                    payloads[first : first + count],
                    end,
                    now,
                )
                n += c.records - c_records
                c.drained, c.records, self.records_total = c_drained, c_records, total
                continue
            try:
                for tag in tags:
                    if run.tags.get(tag) != cid:
                        self._tag_owner(run, tag, c)
            except Exception as exc:  # as the per-record loop: never stop the daemon
                self._malformed(c, exc)
            pending = run.pending
            if not pending:
                run.oldest = now
            pending.append(data)
            run.upto[cid] = starts[first + count - 1] + 1
            rid = run.run_id
            if rid not in unwritten:
                unwritten[rid] = starts[first]
                run.clients.add(cid)
            n += count
        c.drained = end
        c.records += n
        self.records_total += n
        c.last_activity = now

    core.Core.batch = batch
    del encode, decode_record


class BatchedDaemon(IsolatedDaemon):
    """``IsolatedDaemon`` running this script instead of ``python -m summaryd.daemon``."""

    def start(self) -> int:
        from summaryd.daemon.cli import request
        from summaryd.errors import DaemonUnavailableError
        from summaryd.paths import locations

        cmd = [sys.executable, str(Path(__file__).resolve()), "serve", "--foreground"]
        with open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(
                [*cmd, "--log-level", "warning"],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        loc = locations(self.env)
        deadline = time.monotonic() + 30
        while True:
            try:
                request(loc, {"t": "status"}, timeout=1.0)
                return self.proc.pid
            except DaemonUnavailableError:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"daemon exited with {self.proc.returncode}: {self.stderr()}"
                    ) from None
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)  # start-up has no event to wait on


if __name__ == "__main__":
    install()
    from summaryd.daemon.cli import main

    sys.exit(main(sys.argv[1:]))
