"""The s3:// spool on local disk: append, seal, recover after a kill, bound, forget."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from tensorboard.compat.proto import event_pb2

from summaryd.daemon import spool as spool_mod
from summaryd.daemon.spool import Spool
from summaryd.daemon.tfrecord import frame, whole_records_length


def rec(i: int) -> bytes:
    return frame(event_pb2.Event(step=i, wall_time=float(i)).SerializeToString())


def test_append_seal_body_done(tmp_path: Path) -> None:
    sp = Spool(tmp_path / "s")
    assert sp.seal() is None  # nothing open
    assert sp.append(rec(1) + rec(2), wall_time=100.0)
    assert sp.open_bytes == len(rec(1) + rec(2))
    seg = sp.seal()
    assert seg is not None and seg.id == 1 and seg.wall_us == 100_000_000
    assert sp.open_bytes == 0
    body = sp.header(seg) + sp.records(seg)
    assert whole_records_length(body) == len(body)
    first = event_pb2.Event.FromString(body[12 : 12 + body[0]])
    assert first.file_version == "brain.Event:2" and first.wall_time == 100.0
    assert body.endswith(rec(1) + rec(2))
    sp.record_attempt(seg, 7, 24)
    sp.record_attempt(seg, 9, 300)
    with open(seg.attempts_path, "a") as f:
        f.write("11 4")  # torn: the kill came before the newline, so before the PUT
    assert sp.sealed()[0].attempts == ((7, 24), (9, 300))
    sp.done(seg)
    assert sp.sealed() == []
    assert sorted(os.listdir(sp.dir)) == ["next", "node"]


def test_numbers_are_never_reused(tmp_path: Path) -> None:
    sp = Spool(tmp_path)
    for i in range(3):
        sp.append(rec(i), wall_time=1.0)
        seg = sp.seal()
        assert seg is not None
        sp.done(seg)
    again = Spool(tmp_path)
    again.append(rec(9), wall_time=1.0)
    seg = again.seal()
    assert seg is not None and seg.id == 4
    assert again.node == sp.node  # the same node after a restart: same tags namespace


def test_torn_tail_is_cut_and_open_segment_adopted(tmp_path: Path) -> None:
    sp = Spool(tmp_path)
    sp.append(rec(1) + rec(2), wall_time=5.0)
    assert sp._open_path is not None
    with open(sp._open_path, "ab") as f:  # a kill in the middle of a write
        f.write(rec(3)[:-3])
    again = Spool(tmp_path)
    assert again.open_bytes == len(rec(1) + rec(2))
    again.append(rec(4), wall_time=6.0)
    seg = again.seal()
    assert seg is not None and seg.wall_us == 5_000_000  # the adopted file's time
    assert again.records(seg) == rec(1) + rec(2) + rec(4)


def test_two_open_files_older_is_sealed_first(tmp_path: Path) -> None:
    (tmp_path / "open-1000000.rec").write_bytes(rec(1))
    (tmp_path / "open-2000000.rec").write_bytes(rec(2))
    (tmp_path / "open-3000000.rec").write_bytes(b"\x01\x02")  # only a torn record
    sp = Spool(tmp_path)
    segs = sp.sealed()
    assert [s.wall_us for s in segs] == [1_000_000]
    assert sp.open_bytes == len(rec(2))
    assert not (tmp_path / "open-3000000.rec").exists()


def test_stray_attempt_file_is_removed(tmp_path: Path) -> None:
    (tmp_path / "seg-000000000004-1.att").write_text("3\n")
    (tmp_path / "next.tmp").write_text("5")
    Spool(tmp_path)
    assert not (tmp_path / "seg-000000000004-1.att").exists()
    assert not (tmp_path / "next.tmp").exists()


def test_bounded_with_overflow_counter(tmp_path: Path) -> None:
    r = rec(1)
    sp = Spool(tmp_path, max_bytes=3 * len(r))
    assert sp.append(r + r, wall_time=1.0)
    sp.seal()
    assert sp.append(r, wall_time=1.0)
    assert not sp.append(r + r, wall_time=1.0)  # would pass the bound: dropped whole
    st = sp.statistics()
    assert (st.overflowed_records, st.overflowed_bytes) == (2, 2 * len(r))
    assert (st.sealed_segments, st.sealed_bytes, st.open_bytes) == (1, 2 * len(r), len(r))
    sp.done(sp.sealed()[0])
    assert sp.append(r + r, wall_time=1.0)  # room again once uploaded


def test_bound_is_exact_while_the_uploader_forgets_a_segment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loop appends while the uploader thread is inside ``done``: the append
    is decided on the bytes the spool holds, not on a count that still holds the
    segment whose file is already gone (the bound off by a segment)."""
    r = rec(1)
    sp = Spool(tmp_path, max_bytes=2 * len(r))
    assert sp.append(r + r, wall_time=1.0)
    seg = sp.seal()
    assert seg is not None
    removed, resume = threading.Event(), threading.Event()
    real_unlink = os.unlink

    def unlink(path: object, *args: object, **kw: object) -> None:
        real_unlink(path, *args, **kw)  # type: ignore[arg-type]
        if threading.current_thread() is uploader and str(path) == str(seg.path):
            removed.set()  # the segment's file is gone; its count not yet
            assert resume.wait(30)

    monkeypatch.setattr(spool_mod.os, "unlink", unlink)
    uploader = threading.Thread(target=sp.done, args=(seg,))
    uploader.start()
    try:
        assert removed.wait(30)
        result: list[bool] = []
        appender = threading.Thread(target=lambda: result.append(sp.append(r + r, 2.0)))
        appender.start()
        # The append must not be decided in this window: a spool that let it
        # through now would have judged it on the stale count (and dropped it).
        appender.join(0.5)
    finally:
        resume.set()
        uploader.join(30)
    appender.join(30)
    assert result == [True]  # the forgotten segment's room was there
    st = sp.statistics()
    assert (st.open_bytes, st.sealed_bytes, st.overflowed_records) == (2 * len(r), 0, 0)
    assert not sp.append(r, wall_time=3.0)  # and the bound still holds, exactly
