"""The daemon's loop never waits for slow work: while one client's large
add_embedding is being written (seconds of tensors.tsv), other requests are
answered at once.

The daemon used to block its loop until the embedding's files were written
when a flush or close needed the run (a 100000x64 embedding held a status
request 8.9 s).  Here a status reply that shows the job still outstanding
proves the loop answered during the work, not after it.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from summaryd import SummaryWriter
from summaryd.control import request
from summaryd.paths import locations

from ..conftest import DaemonEnv

pytestmark = pytest.mark.integration

N, D = 30000, 64
ANSWER_WITHIN = 1.0  # seconds: generous on a loaded 2-core machine; the old loop took several


def test_status_is_answered_while_an_embedding_is_written(
    daemon: DaemonEnv, tmp_path: Path
) -> None:
    loc = locations(daemon.env)
    mat = np.random.default_rng(3).standard_normal((N, D)).astype(np.float32)
    logged = threading.Event()
    flushed = threading.Event()

    def embed() -> None:
        with SummaryWriter(tmp_path / "emb") as w:
            w.add_embedding(mat, metadata=[str(i) for i in range(N)], global_step=1, tag="big")
            logged.set()
            w.flush()
            flushed.set()

    t = threading.Thread(target=embed)
    t.start()
    try:
        assert logged.wait(60)
        during: list[float] = []
        deadline = time.monotonic() + 60
        while not flushed.is_set() and time.monotonic() < deadline and len(during) < 5:
            t0 = time.monotonic()
            st = request(loc, {"t": "status"}, timeout=30)
            if st["daemon"]["encoding"]:  # answered while the files were being written
                during.append(time.monotonic() - t0)
        assert during, "the embedding was written before any status came back"
        assert max(during) < ANSWER_WITHIN, during
    finally:
        t.join(120)
    assert (tmp_path / "emb" / "00001" / "big" / "tensors.tsv").stat().st_size > 0
