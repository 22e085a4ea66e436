"""The daemon's core: malformed records, and the record kinds besides scalars.

The core does no I/O and reads no clock (STYLE sections 1 and 8): these tests
feed it ring records built with msgpack, as the SDK packs them, at chosen
``now`` values, and check the actions it returns (helpers in
``core_helpers.py``). Covered here: each malformed record gives one notice
(limited per client) while good records still get written; scalar, tensor and
text records, ``step=None``, an idempotent hello, and records with nothing in
them.
"""

from __future__ import annotations

import msgpack
import pytest

from summaryd import wire
from summaryd.daemon.actions import Action, Append, Notice, OpenFile, SetTail
from summaryd.daemon.core import NOTICE_LIMIT, Core

from .core_helpers import LOG, T0, WALL, Client, Record, events, of, scalars

# -- malformed records -----------------------------------------------------------------------------


def _bad_records(c: Client) -> dict[str, Record]:
    return {
        "garbage": c.raw(b"\xc1\xc1\xc1"),
        "truncated": c.raw(msgpack.packb([wire.SCALAR, 1, "t", 1.0, 1, WALL])[:-3]),
        "not-array": c.raw(msgpack.packb({"kind": 3})),
        "int": c.raw(msgpack.packb(3)),
        "empty-array": c.rec(),
        "unknown-kind": c.rec(99, 1),
        "str-kind": c.rec("SCALAR", 1, "t", 1.0, 1, WALL),
        "bool-kind": c.rec(True, 7, LOG, "", 10, 120.0, None, WALL),
        "float-kind": c.rec(3.0, 1, "t", 1.0, 1, WALL),
        "list-kind": c.rec([3], 1, "t", 1.0, 1, WALL),
        "kind-only": c.rec(wire.SCALAR),
        "unknown-writer": c.scalar(42, "t", 1.0),
        "unhashable-writer": c.rec(wire.SCALAR, [1], "t", 1.0, 1, WALL),
        "tag-int": c.rec(wire.SCALAR, 1, 5, 1.0, 1, WALL),
        "value-nil": c.rec(wire.SCALAR, 1, "t", None, 1, WALL),
        "value-str": c.rec(wire.SCALAR, 1, "t", "abc", 1, WALL),
        "step-float": c.rec(wire.SCALAR, 1, "t", 1.0, 1.5, WALL),
        "step-too-big": c.rec(wire.SCALAR, 1, "t", 1.0, 1 << 63, WALL),
        "walltime-nil": c.rec(wire.SCALAR, 1, "t", 1.0, 1, None),
        "arity": c.rec(wire.SCALAR, 1, "t", 1.0, 1),
        "text-body-int": c.rec(wire.TEXT, 1, "t", 5, 1, WALL),
        "scalar-t-arity": c.rec(wire.SCALAR_T, 1, "t", 1.0, 1, WALL),
        "open-relative": c.open(8, log_dir="relative/dir"),
        "open-duplicate": c.open(1),
        "open-arity": c.rec(wire.OPEN, 9, LOG),
        "open-suffix-slash": c.open(10, suffix="/x"),
        "open-nul": c.open(11, log_dir=LOG + "\0"),
        "open-wid-str": c.open("w"),  # type: ignore[arg-type]
        "open-max-queue-float": c.rec(wire.OPEN, 12, LOG, "", 1.5, 120.0, None, WALL),
        "open-flush-str": c.rec(wire.OPEN, 13, LOG, "", 10, "soon", None, WALL),
        "open-purge-float": c.open(14, purge_step=1.5),  # type: ignore[arg-type]
        "open-walltime-list": c.rec(wire.OPEN, 15, LOG, "", 10, 120.0, None, [1]),
        "close-unknown": c.close(77),
        "close-arity": c.rec(wire.CLOSE),
        "close-unhashable": c.rec(wire.CLOSE, {"a": 1}),
    }


def test_each_malformed_record_gives_one_notice_and_good_records_still_get_written() -> None:
    core = Core()
    c = Client(core)
    c.send(T0, c.open())
    core.tick(T0)
    bad = _bad_records(c)
    assert len(bad) > NOTICE_LIMIT
    every: list[Action] = []
    for i, (name, rec) in enumerate(bad.items()):
        c.send(T0 + 0.5, rec, c.scalar(1, "good", float(i)))  # never raises
        acts = core.tick(T0 + 0.5)
        every += acts
        assert len(of(acts, Notice)) == (1 if i < NOTICE_LIMIT else 0), name
    assert core.clients[c.cid].malformed == len(bad)
    assert core.malformed_total == len(bad)
    acts = core.tick(T0 + 2)
    every += acts
    written = scalars(b"".join(a.data for a in of(every, Append)))
    assert written == [("good", float(i)) for i in range(len(bad))]
    assert of(every, OpenFile) == []  # no malformed OPEN created a run
    assert list(core.runs) == [(LOG, "")]
    assert of(acts, SetTail) == [SetTail(c.cid, c.pos)]  # malformed records do not hold it


@pytest.mark.parametrize("name", sorted(_bad_records(Client(Core()))))
def test_malformed_record_alone(name: str) -> None:
    core = Core()
    c = Client(core)
    c.send(T0, c.open())
    core.tick(T0)
    rec = _bad_records(c)[name]
    # Re-base the record at the client's position (the dict above advanced it).
    c.pos = rec[1]
    c.send(T0, rec, c.scalar(1, "after", 1.0))
    acts = core.tick(T0 + 1)
    notices = of(acts, Notice)
    assert len(notices) == 1, notices
    assert notices[0].cid == c.cid and notices[0].level in ("warning", "error")
    assert ("after", 1.0) in scalars(b"".join(a.data for a in of(acts, Append)))
    assert of(acts, OpenFile) == []


def test_notices_are_limited_per_client() -> None:
    core = Core()
    c = Client(core)
    other = Client(core, "other")
    c.send(T0, *(c.raw(b"\xc1") for _ in range(NOTICE_LIMIT + 15)))
    other.send(T0, other.raw(b"\xc1"))
    acts = core.tick(T0)
    mine = [n for n in of(acts, Notice) if n.cid == c.cid]
    assert len(mine) == NOTICE_LIMIT
    assert "suppressed" in mine[-1].msg and "suppressed" not in mine[0].msg
    assert [n.cid for n in of(acts, Notice) if n.cid != c.cid] == ["other"]
    assert core.clients[c.cid].malformed == NOTICE_LIMIT + 15
    c.send(T0, c.raw(b"\xc1"))
    assert of(core.tick(T0), Notice) == []


# -- other record kinds ----------------------------------------------------------------------------


def test_scalar_tensor_and_text_records() -> None:
    core = Core()
    c = Client(core)
    c.send(
        T0,
        c.open(),
        c.rec(wire.SCALAR_T, 1, "d", 0.1, 5, WALL, True),
        c.rec(wire.TEXT, 1, "note", "hello", 6, WALL),
    )
    [app] = of(core.tick(T0 + 1), Append)
    _, d, note = events(app.data)
    assert d.summary.value[0].tensor.double_val == [0.1] and d.step == 5
    assert note.summary.value[0].tag == "note/text_summary"
    assert note.summary.value[0].tensor.string_val == [b"hello"]


def test_step_none_leaves_the_step_unset() -> None:
    core = Core()
    c = Client(core)
    c.send(T0, c.open(), c.scalar(1, "t", 1.0, None), c.scalar(1, "t", 1.0, -5))
    [app] = of(core.tick(T0 + 1), Append)
    _, a, b = events(app.data)
    assert a.step == 0 and b.step == -5


def test_hello_is_idempotent() -> None:
    core = Core()
    c = Client(core, tail=64)
    c.send(T0, c.open())
    again = core.hello(c.cid, 1234, 99, "ring-c1", T0 + 5, tail=0, argv=["python"])
    assert again is core.clients[c.cid]
    assert again.tail == 64 and again.argv == ["python"] and again.writers


def test_records_with_nothing_do_nothing() -> None:
    core = Core()
    c = Client(core)
    c.send(
        T0,
    )
    assert core.tick(T0) == []
