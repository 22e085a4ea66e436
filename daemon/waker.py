"""The loop's wake pipe: how other threads (the uploader, the encoder pool's
collector) and signal handlers interrupt the loop's poll.

One byte per wake-up, not per finished job: ``wake`` writes only when no byte
is pending, and the loop ``clear``s when its poll returns.  ``clear`` empties
the pipe *before* it accepts wake-ups again.  In the other order a thread's
``wake`` between the two steps put its byte in the pipe, the loop read it,
and the flag stayed set with the pipe empty: every later ``wake`` was lost,
and the loop woke only on its 0.5 s timer from then on (s3 flushes took 0.5 s
each after a few rounds).  In this order a ``wake`` in between writes nothing,
which costs nothing: the loop is awake and reads the threads' results after
``clear``.
"""

from __future__ import annotations

import os


class Waker:
    def __init__(self) -> None:
        self.r, self.w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._pending = False

    def wake(self) -> None:
        """From any thread."""
        if self._pending:
            return
        self._pending = True
        try:
            os.write(self.w, b"\0")
        except OSError:
            pass  # the pipe is full (the loop wakes anyway) or closed at exit

    def clear(self) -> None:
        """From the loop, when its poll says the pipe is readable."""
        self._drain()
        self._pending = False

    def _drain(self) -> None:
        try:
            while os.read(self.r, 512):
                pass
        except BlockingIOError:
            pass

    def close(self) -> None:
        os.close(self.r)
        os.close(self.w)
