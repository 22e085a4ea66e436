"""Peer: wait for a go signal on stdin, log PEER_N scalars under PEER_TAG, close, exit 0.

Environment: PEER_LOG_DIR, PEER_N, PEER_TAG, plus the SUMMARYD_* variables.
Prints "ready" once the writer exists, so the test can start all peers together.
"""

import os
import sys

from summaryd import SummaryWriter

w = SummaryWriter(os.environ["PEER_LOG_DIR"])
tag = os.environ["PEER_TAG"]
print("ready", flush=True)
sys.stdin.readline()
for i in range(int(os.environ["PEER_N"])):
    w.add_scalar(tag, float(i), i)
w.close()
