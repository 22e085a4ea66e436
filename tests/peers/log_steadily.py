"""Peer: log scalars at a steady rate until told to stop, for the self-healing
tests and benchmark (the daemon is SIGKILLed while it logs).

After each step returns it prints ``<step> <time.monotonic()>`` (CLOCK_MONOTONIC
is one clock for every process on the machine, so the parent can tell which
steps were logged after it killed the daemon).  A line "stop" on stdin makes
it close the writer and print a JSON report of its client's counters.

Environment: PEER_LOG_DIR, PEER_TAG (default "loss"), PEER_RATE (steps per
second, default 200), plus the SUMMARYD_* variables.
"""

import json
import os
import sys
import time

from peer_common import stop_on_stdin  # beside this script

from summaryd import SummaryWriter
from summaryd import client as client_mod

stop = stop_on_stdin()
w = SummaryWriter(os.environ["PEER_LOG_DIR"])
tag = os.environ.get("PEER_TAG", "loss")
period = 1.0 / float(os.environ.get("PEER_RATE", "200"))
out = sys.stdout
step = 0
next_at = time.monotonic()
while not stop.is_set():
    w.add_scalar(tag, float(step), step)
    out.write(f"{step} {time.monotonic():.6f}\n")
    out.flush()
    step += 1
    next_at += period
    # Pacing, not synchronisation: a steady rate like a training loop's.
    time.sleep(max(0.0, next_at - time.monotonic()))
c = client_mod.current_client()
assert c is not None
w.close()
report = {
    "steps": step,
    "flushes_timed_out": c.flushes_timed_out,
    "records_dropped": c.statistics().records_dropped,
    "daemons_spawned": c.daemons_spawned,
}
out.write("report " + json.dumps(report) + "\n")
out.flush()
