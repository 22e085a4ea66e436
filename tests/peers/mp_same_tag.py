"""Peer: log the tag PEER_TAG (default "loss") for steps PEER_FIRST .. PEER_FIRST+PEER_N-1
into PEER_LOG_DIR, recording every warning, and report them as one JSON line.

Protocol with the test (every line on stdin is a go-ahead):
  prints "ready" once the writer exists, waits for a line;
  logs, flushes, prints "logged", waits for a line (so both peers are live
  clients while the daemon sees both logging the tag);
  closes the writer and prints {"pid": ..., "notices": [...], "other": [...]}:
  the messages of the summaryd.DaemonNoticeWarning it got, and any other warnings.

Environment: PEER_LOG_DIR, PEER_N, PEER_FIRST (default 0), PEER_TAG, plus SUMMARYD_*.
"""

import json
import os
import sys
import warnings

from summaryd import DaemonNoticeWarning, SummaryWriter

first = int(os.environ.get("PEER_FIRST", "0"))
n = int(os.environ["PEER_N"])
tag = os.environ.get("PEER_TAG", "loss")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    w = SummaryWriter(os.environ["PEER_LOG_DIR"])
    print("ready", flush=True)
    sys.stdin.readline()
    for i in range(first, first + n):
        w.add_scalar(tag, float(i), i)
    w.flush()
    print("logged", flush=True)
    sys.stdin.readline()
    w.close()
report = {
    "pid": os.getpid(),
    "notices": [str(c.message) for c in caught if issubclass(c.category, DaemonNoticeWarning)],
    "other": [
        f"{c.category.__name__}: {c.message}"
        for c in caught
        if not issubclass(c.category, DaemonNoticeWarning)
    ],
}
print(json.dumps(report), flush=True)
