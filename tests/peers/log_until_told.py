"""Peer: log scalars through two runs (the writer's own and an add_scalars
sub-run) until PEER_N steps, printing each step number once it has returned;
then flush and print "flushed".

Environment: PEER_LOG_DIR, PEER_N, plus the SUMMARYD_* variables.
"""

import os

from summaryd import SummaryWriter

w = SummaryWriter(os.environ["PEER_LOG_DIR"])
for i in range(int(os.environ["PEER_N"])):
    w.add_scalar("loss", float(i), i)
    w.add_scalars("grp", {"a": float(i)}, i)
    if i % 500 == 0:
        print(i, flush=True)
print("flushed" if w.close() is None else "?", flush=True)
