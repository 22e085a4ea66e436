"""A fake client of the daemon's core (``summaryd.daemon.core``), and reading what it wrote.

``Client`` builds ring records with msgpack, as the SDK packs them, and feeds
them to a ``Core`` at chosen ``now`` values; ``events``/``scalars`` read the
written bytes back as TFRecords of TensorBoard Events; ``of``/``index`` pick
actions out of a plan. ``LOG``/``LOG2`` are only names (the core never
touches the file system), ``T0`` the loop's clock and ``WALL`` the trainers'.
Shared by the ``test_core_*.py`` modules, ``test_core_machine.py``,
``test_core_arrays.py`` and ``test_uploads.py``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any

import msgpack
from tensorboard.compat.proto import event_pb2 as tb_event_pb2

from summaryd import wire
from summaryd.daemon.actions import Action
from summaryd.daemon.core import Core
from summaryd.daemon.tfrecord import HEADER_BYTES, whole_records_length
from summaryd.ring import padded_size

# Paths are only names here: the core never touches the file system.
LOG = "/nonexistent/summaryd-unit/run"

LOG2 = "/nonexistent/summaryd-unit/other"

T0 = 1000.0  # the loop's monotonic clock

WALL = 1700000000.0  # trainers' wall clock

Record = tuple[int, int, bytes]


# -- helpers -------------------------------------------------------------------------------


class Client:
    """One SDK client: packs records the way ``sdk/writer.py`` does, at ring positions."""

    def __init__(self, core: Core, cid: str = "c1", now: float = T0, tail: int = 0) -> None:
        self.core = core
        self.cid = cid
        self.pos = tail
        core.hello(cid, 1234, 99, f"ring-{cid}", now, tail=tail)

    def raw(self, payload: bytes) -> Record:
        start = self.pos
        self.pos += padded_size(len(payload))
        return (start, self.pos, payload)

    def rec(self, *items: Any) -> Record:
        return self.raw(msgpack.packb(list(items), use_bin_type=True))

    def open(
        self,
        wid: int = 1,
        log_dir: str = LOG,
        suffix: str = "",
        max_queue: int = 10,
        flush_secs: float = 120.0,
        purge_step: int | None = None,
        walltime: float = WALL,
    ) -> Record:
        return self.rec(
            wire.OPEN, wid, log_dir, suffix, max_queue, flush_secs, purge_step, walltime
        )

    def scalar(
        self, wid: int, tag: str, value: float, step: int | None = None, walltime: float = WALL + 1
    ) -> Record:
        return self.rec(wire.SCALAR, wid, tag, value, step, walltime)

    def close(self, wid: int = 1) -> Record:
        return self.rec(wire.CLOSE, wid)

    def send(self, now: float, *recs: Record) -> None:
        self.core.records(self.cid, list(recs), now)


def events(data: bytes) -> list[Any]:
    """The Events in ``data``, which must be whole TFRecords."""
    assert whole_records_length(data) == len(data)
    out = []
    o = 0
    while o < len(data):
        (n,) = struct.unpack_from("<Q", data, o)
        out.append(tb_event_pb2.Event.FromString(data[o + HEADER_BYTES : o + HEADER_BYTES + n]))
        o += HEADER_BYTES + n + 4
    return out


def scalars(data: bytes) -> list[tuple[str, float]]:
    return [(v.tag, v.simple_value) for e in events(data) for v in e.summary.value]


def of(actions: Iterable[Action], kind: type) -> list[Any]:
    return [a for a in actions if isinstance(a, kind)]


def index(actions: list[Action], kind: type) -> int:
    return next(i for i, a in enumerate(actions) if isinstance(a, kind))
