"""Peer: log PEER_N histograms of PEER_SIZE float32 values (records larger than
a quarter of the ring travel in blobs), optionally leave one blob whose record
was never committed (PEER_ORPHAN=1), print "logged", then SIGKILL itself.

Environment: PEER_LOG_DIR, PEER_N, PEER_SIZE, PEER_ORPHAN, plus SUMMARYD_*.
"""

import os
import signal
import sys

import numpy as np

from summaryd import SummaryWriter, client

w = SummaryWriter(os.environ["PEER_LOG_DIR"])
values = np.linspace(-1.0, 1.0, int(os.environ["PEER_SIZE"]), dtype=np.float32)
for i in range(int(os.environ["PEER_N"])):
    w.add_histogram("big", values, i)
if os.environ.get("PEER_ORPHAN") == "1":
    c = client.get_client()
    c._write_blob([memoryview(values.view(np.uint8))], values.nbytes)  # killed before its record
sys.stdout.write("logged\n")
sys.stdout.flush()
os.kill(os.getpid(), signal.SIGKILL)
