"""The loop's control socket: the ROUTER every client's DEALER talks to.

Messages are decoded by ``wire.unpack`` (which refuses anything malformed) and
dispatched by type through ``Control._MESSAGES``; every reply is built by its
one builder in ``wire.py``.  Bulk data never travels here.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from typing import Any, ClassVar

import zmq

from summaryd import __version__, wire
from summaryd.paths import Locations

from .core import Core
from .rings import Rings, bounded_argv

log = logging.getLogger("summaryd")

RECEIVE_BUDGET = 256  # control messages per cycle, so a flood of them cannot starve the rings
_SID = re.compile(r"[0-9a-f]{16}")  # a client's session id: 8 random bytes in hex


class Control:
    # A message's type -> its handler ("bell" has none: it only wakes the loop;
    # unknown types are ignored).  Filled in below the class.
    _MESSAGES: ClassVar[dict[str, Callable[[Control, bytes, dict[str, Any], float], None]]]

    def __init__(
        self,
        loc: Locations,
        core: Core,
        rings: Rings,
        status: Callable[[], dict[str, Any]],
        stop: Callable[[], None],
        pid: int,
    ) -> None:
        self.loc = loc
        self.core = core
        self.rings = rings
        self.status = status  # builds the status reply (the loop's)
        self.stop = stop  # asks the loop to shut down
        self.pid = pid
        self.by_identity: dict[bytes, str] = {}
        self.bad_messages = 0

    def bind(self, ctx: zmq.Context[Any]) -> zmq.Socket[Any]:
        sock: zmq.Socket[Any] = ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.ROUTER_MANDATORY, 0)
        # A larger message is refused by libzmq (the peer is disconnected) before it
        # is buffered: wire.unpack would refuse it anyway, after holding it twice.
        sock.setsockopt(zmq.MAXMSGSIZE, wire.MAX_MESSAGE_BYTES)
        try:
            os.unlink(self.loc.socket_path)  # stale: we hold the lock, so no daemon owns it
        except FileNotFoundError:
            pass
        sock.bind(self.loc.endpoint)
        os.chmod(self.loc.socket_path, 0o600)
        self.sock = sock
        return sock

    def receive(self, now: float) -> None:
        # At most RECEIVE_BUDGET per cycle: the poll is level-triggered, so the
        # rest are read next cycle, after the rings are drained and acks sent.
        for _ in range(RECEIVE_BUDGET):
            try:
                frames = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(frames) != 2:
                continue
            identity, raw = frames
            try:
                msg = wire.unpack(raw)
            except wire.ProtocolError as exc:
                self.reply(identity, wire.notice("error", str(exc)))
                continue
            handler = self._MESSAGES.get(msg["t"])
            if handler is None:
                continue
            try:
                handler(self, identity, msg, now)
            except Exception:  # a message must never take the daemon down
                self.bad_messages += 1
                log.exception("message %r from %r failed", msg.get("t"), identity)

    def reply(self, identity: bytes, msg: dict[str, Any]) -> None:
        try:
            self.sock.send_multipart([identity, wire.pack(msg)], zmq.NOBLOCK)
        except zmq.ZMQError:
            pass  # a peer that does not read its socket loses its replies, nothing else

    def notify(self, cid: str, msg: dict[str, Any]) -> None:
        """Send ``msg`` to client ``cid`` (if it ever said hello)."""
        a = self.rings.attached.get(cid)
        if a is not None and a.identity is not None:
            self.reply(a.identity, msg)
            if msg["t"] == "notice":
                self.rings.ring_bell(cid)

    def forget(self, identity: bytes | None) -> None:
        if identity is not None:
            self.by_identity.pop(identity, None)

    # -- handlers ------------------------------------------------------------

    def _hello(self, identity: bytes, msg: dict[str, Any], now: float) -> None:
        if msg["v"] != wire.PROTOCOL_VERSION:
            self.reply(
                identity,
                wire.notice(
                    "error",
                    f"protocol version {msg['v']} is not supported; this daemon speaks "
                    f"{wire.PROTOCOL_VERSION} (summaryd {__version__}); restart it",
                ),
            )
            return
        sid = msg["sid"]
        if not _SID.fullmatch(sid) or not 0 < msg["pid"] < 1 << 32:
            self.reply(identity, wire.notice("error", "malformed hello"))
            return
        known = self.rings.attached.get(sid)
        if known is not None and (
            msg["pid"] != known.ring.pid or msg["ring"] != os.path.basename(known.path)
        ):
            # Another process naming a session it does not own: never rebind it.
            self.reply(identity, wire.notice("error", f"session {sid} belongs to another ring"))
            return
        if known is None:
            name = self.loc.ring_name(msg["pid"], sid)
            if msg["ring"] != name or not self.rings.attach(name, now, argv=msg["argv"]):
                self.reply(identity, wire.notice("error", f"ring {msg['ring']!r} refused"))
                return
        a = self.rings.attached[sid]
        self.core.hello(
            sid, msg["pid"], msg["start"], msg["ring"], now, argv=bounded_argv(msg["argv"])
        )
        if a.identity is not None and a.identity != identity:
            self.by_identity.pop(a.identity, None)
        a.identity = identity
        self.by_identity[identity] = sid
        self.reply(identity, wire.welcome(self.pid))

    def _flush(self, identity: bytes, msg: dict[str, Any], now: float) -> None:
        cid = self.by_identity.get(identity)
        if cid is not None:  # an unknown sender says hello first (the client's rule)
            self.core.flush(cid, msg["tok"], msg["pos"])

    def _status(self, identity: bytes, msg: dict[str, Any], now: float) -> None:
        self.reply(identity, self.status())

    def _bye(self, identity: bytes, msg: dict[str, Any], now: float) -> None:
        cid = self.by_identity.get(identity)
        if cid is not None:
            self.rings.finish(cid, now)

    def _stop(self, identity: bytes, msg: dict[str, Any], now: float) -> None:
        self.reply(identity, wire.stopping())
        self.stop()


Control._MESSAGES = {
    "hello": Control._hello,
    "flush": Control._flush,
    "status": Control._status,
    "bye": Control._bye,
    "stop": Control._stop,
}
