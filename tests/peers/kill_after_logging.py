"""Peer: log N scalars (PEER_N) to PEER_LOG_DIR, then SIGKILL itself on the next line.

Environment: PEER_LOG_DIR, PEER_N, PEER_TAG (default "loss"), plus the
SUMMARYD_* variables of the test's daemon.
"""

import os
import signal

from summaryd import SummaryWriter

w = SummaryWriter(os.environ["PEER_LOG_DIR"])
tag = os.environ.get("PEER_TAG", "loss")
for i in range(int(os.environ["PEER_N"])):
    w.add_scalar(tag, float(i), i)
os.kill(os.getpid(), signal.SIGKILL)
