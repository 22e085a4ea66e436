"""Peer: one life of a trainer that may be killed and resumed.

Logs PEER_TAGS (comma-separated) for steps PEER_FROM..PEER_TO-1 with value
PEER_OFFSET + step, into PEER_LOG_DIR, opened with purge_step PEER_PURGE if set.
PEER_KILL=1: SIGKILL itself right after the last call; else close() normally.
"""

import os
import signal

from summaryd import SummaryWriter

purge = os.environ.get("PEER_PURGE")
w = SummaryWriter(os.environ["PEER_LOG_DIR"], purge_step=int(purge) if purge else None)
offset = float(os.environ.get("PEER_OFFSET", "0"))
for step in range(int(os.environ["PEER_FROM"]), int(os.environ["PEER_TO"])):
    for tag in os.environ["PEER_TAGS"].split(","):
        w.add_scalar(tag, offset + step, step)
if os.environ.get("PEER_KILL") == "1":
    os.kill(os.getpid(), signal.SIGKILL)
w.close()
