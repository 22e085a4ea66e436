"""A daemon's event-file side in its own process (POSIX locks are per process),
driven line by line on stdin; answers each command with the file's path.

* ``open DIR N``: ``EventFile.create(DIR, now, "node", pid, N, "")``
* ``append TEXT...``: one write of the records ``TEXT...`` (framed)
* ``burst NAME N``: N writes of one record each, ``NAME-0`` .. ``NAME-<N-1>``
* ``torn TEXT``: under the append lock, half of a record, then SIGKILL (a
  daemon killed in the middle of a write)
* ``close``: close the file and exit
"""

from __future__ import annotations

import fcntl
import os
import signal
import sys
import time

from summaryd.daemon.eventfile import APPEND, EventFile
from summaryd.daemon.tfrecord import frame


def main() -> None:
    f: EventFile | None = None
    for line in sys.stdin:
        cmd, *args = line.split()
        if cmd == "open":
            f = EventFile.create(args[0], time.time(), "node", os.getpid(), int(args[1]), "")
        elif cmd == "append":
            assert f is not None
            f.append(b"".join(frame(a.encode()) for a in args))
        elif cmd == "burst":  # burst NAME N: N appends of one record "NAME-i" each
            assert f is not None
            for i in range(int(args[1])):
                f.append(frame(f"{args[0]}-{i}".encode()))
        elif cmd == "torn":
            assert f is not None and f.fd is not None
            fcntl.lockf(f.fd, fcntl.LOCK_EX, 1, APPEND, os.SEEK_SET)
            rec = frame(args[0].encode())
            os.write(f.fd, rec[: len(rec) // 2])
            os.kill(os.getpid(), signal.SIGKILL)
        elif cmd == "close":
            assert f is not None
            f.close()
            print(f.path, flush=True)
            return
        assert f is not None
        print(f.path, flush=True)


if __name__ == "__main__":
    main()
