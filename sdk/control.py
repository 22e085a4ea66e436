"""One control request and its reply, from any process (CLI, ``FileWriter``).

The per-process ``Client`` keeps its own long-lived socket for hello, bell and
flush; a one-off question (status, stop) gets a socket of its own here, so its
reply can never be mistaken for one the client is waiting for.
"""

from __future__ import annotations

import os
from typing import Any

from . import wire
from .errors import DaemonUnavailableError
from .paths import Locations
from .spawn import daemon_running


def request(loc: Locations, message: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
    """Send one control message and wait for the reply.

    Raises:
        DaemonUnavailableError: no daemon answered within ``timeout`` seconds.
    """
    import zmq

    if not os.path.exists(loc.socket_path) or not daemon_running(loc):
        raise DaemonUnavailableError(f"no summaryd daemon runs for {loc.runtime_dir}")
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(loc.endpoint)
        sock.send(wire.pack(message))
        if not sock.poll(int(timeout * 1000)):
            raise DaemonUnavailableError(f"the daemon at {loc.endpoint} did not answer")
        reply: dict[str, Any] = wire.unpack(sock.recv())
        return reply
    finally:
        sock.close()
        ctx.term()
