"""A trainer driven line by line on stdin, for tests with several daemons.

It prints ``<pid> <session>`` once, then answers each command with "ok" or
"error <exception>".  Warnings are errors in it, so a notice from a daemon
(say "ring ... refused") fails the command that picked it up.

* ``log DIR TAG FIRST END [OFFSET]``: ``add_scalar(TAG, step + OFFSET, step)``
  for steps FIRST..END-1 (one writer per DIR, made at its first use)
* ``resume DIR STEP``: a new writer for DIR with ``purge_step=STEP``
* ``flush DIR``; ``quit``: close every writer and exit
"""

from __future__ import annotations

import os
import sys
import warnings

warnings.simplefilter("error")

from summaryd import SummaryWriter  # noqa: E402  (after the warnings filter)
from summaryd.client import get_client  # noqa: E402


def main() -> None:
    writers: dict[str, SummaryWriter] = {}
    print(os.getpid(), get_client().session, flush=True)
    for line in sys.stdin:
        cmd, *args = line.split()
        try:
            if cmd == "log":
                if args[0] not in writers:
                    writers[args[0]] = SummaryWriter(args[0])
                off = float(args[4]) if len(args) > 4 else 0.0
                for i in range(int(args[2]), int(args[3])):
                    writers[args[0]].add_scalar(args[1], i + off, i)
            elif cmd == "resume":
                writers[args[0]] = SummaryWriter(args[0], purge_step=int(args[1]))
            elif cmd == "flush":
                writers[args[0]].flush()
            elif cmd == "quit":
                for w in writers.values():
                    w.close()
            print("ok", flush=True)
        except Exception as exc:
            print("error", repr(exc), flush=True)
        if cmd == "quit":
            break


if __name__ == "__main__":
    main()
