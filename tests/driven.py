"""A test's helper process driven line by line: one command in, one line out.

Peers of the integration tests (a trainer on a simulated node, a daemon's
event-file side) read commands on stdin and answer each with one line; the
test waits for that line (an event, never a sleep) and stops the process by
PID when it is done with it.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path


class Driven:
    def __init__(self, script: Path, env: Mapping[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(script)],
            env=None if env is None else dict(env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def readline(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline()

    def send(self, *command: object) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(" ".join(map(str, command)) + "\n")
        self.proc.stdin.flush()

    def ask(self, *command: object) -> str:
        """Send ``command``; its answer, without the newline."""
        self.send(*command)
        return self.readline().rstrip("\n")

    def end(self) -> None:
        """Kill (by PID) if still running, reap, close the pipes."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None:
                f.close()


TRAINER = Path(__file__).resolve().parent / "peers" / "line_trainer.py"


class Trainer(Driven):
    """``tests/peers/line_trainer.py`` in ``env``: each command must answer "ok"."""

    def __init__(self, env: Mapping[str, str]) -> None:
        super().__init__(TRAINER, env)
        pid, self.session = self.readline().split()
        assert int(pid) == self.proc.pid

    def __call__(self, *command: object) -> None:
        reply = self.ask(*command)
        assert reply == "ok", f"{command}: {reply!r}"
