"""A daemon no client can break: fuzzing (hypothesis) against a real daemon's socket and rings.

One daemon for the module (``conftest.py``'s ``fuzz_daemon``); after every
example a ``status`` request must be answered within 2 s. Arbitrary bytes,
arbitrary msgpack and well-typed wrong messages go to the socket; arbitrary
ring contents beside a good client's records, which must all arrive. The
number of examples run is printed and written to
``<pytest basetemp>/fuzz_counts.json``.
"""

from __future__ import annotations

import mmap
import os
import struct
from collections import Counter
from pathlib import Path
from typing import Any
from zlib import crc32

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from summaryd import SummaryWriter, wire
from summaryd.ring import HEADER_SIZE

from ..conftest import DaemonEnv
from .hostile_fuzz import FUZZ_SETTINGS, I64, KEY, LEAF, MSGPACK, TEXT, fuzz_messages, fuzzing
from .hostile_helpers import assert_whole_event_files, good_points

pytestmark = pytest.mark.integration


def test_fuzz_arbitrary_bytes(
    fuzz_daemon: DaemonEnv,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with fuzzing(fuzz_daemon, "bytes", tmp_path_factory, capsys) as f:

        @settings(max_examples=300, **FUZZ_SETTINGS)
        @given(st.lists(st.binary(max_size=300), min_size=1, max_size=3))
        def run(frames: list[bytes]) -> None:
            f.sock.send_multipart(frames)
            f.check(frames)

        run()
        assert f.examples >= 300


def test_fuzz_arbitrary_msgpack(
    fuzz_daemon: DaemonEnv,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with fuzzing(fuzz_daemon, "msgpack", tmp_path_factory, capsys) as f:

        @settings(max_examples=300, **FUZZ_SETTINGS)
        @given(st.one_of(MSGPACK, st.dictionaries(KEY, MSGPACK, max_size=8)))
        def run(value: Any) -> None:
            f.sock.send(msgpack.packb(value, use_bin_type=True))
            f.check(value)

        run()
        assert f.examples >= 300


def test_fuzz_well_typed_wrong_messages(
    fuzz_daemon: DaemonEnv,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Includes hello with a NUL in the session and its derived ring name: see
    ``test_hello_with_nul_in_session_is_refused``."""
    with fuzzing(fuzz_daemon, "messages", tmp_path_factory, capsys) as f:

        @settings(max_examples=300, **FUZZ_SETTINGS)
        @given(fuzz_messages(f.loc))
        def run(msg: dict[str, Any]) -> None:
            if not f.attached:
                f.attach()
            f.sock.send(msgpack.packb(msg, use_bin_type=True))
            if msg["t"] == "bye":
                f.attached = False
            f.check(msg)

        run()
        assert f.examples >= 300


# Ring fuzz: what the hostile ring does after hello.
RING_CAP = 4096
HEAD = st.one_of(
    st.integers(0, RING_CAP).map(lambda x: x & ~7),  # aligned, within a lap
    st.integers(0, 4 * RING_CAP),  # unaligned, beyond capacity
    st.integers(0, 2**64 - 1),
    st.sampled_from([0, 8, RING_CAP - 8, RING_CAP, RING_CAP + 8, 2**63, 2**64 - 8]),
)


def ring_records(log_dir: str) -> st.SearchStrategy[list[Any]]:
    """Records of every kind with hostile fields; OPEN only ever names ``log_dir``
    or paths the daemon must refuse (a fuzzer must not create files elsewhere)."""
    dirs = st.sampled_from(
        [log_dir, log_dir + "/sub", "relative", "", log_dir + "/../x", log_dir + "/a\0b"]
    )
    wid = st.one_of(st.integers(0, 3), I64, LEAF)
    step = st.one_of(st.none(), I64, LEAF)
    wt = st.one_of(st.floats(), I64, LEAF)
    value = st.one_of(st.floats(), I64, LEAF)
    return st.one_of(
        st.tuples(
            st.just(wire.OPEN),
            wid,
            dirs,
            st.one_of(TEXT, LEAF),
            st.one_of(I64, LEAF),
            st.one_of(st.floats(), LEAF),
            st.one_of(st.none(), I64, LEAF),
            wt,
        ),
        st.tuples(st.just(wire.CLOSE), wid),
        st.tuples(st.just(wire.SCALAR), wid, st.one_of(TEXT, LEAF), value, step, wt),
        st.tuples(st.just(wire.SCALAR_T), wid, st.one_of(TEXT, LEAF), value, step, wt, LEAF),
        st.tuples(st.just(wire.TEXT), wid, st.one_of(TEXT, LEAF), st.one_of(TEXT, LEAF), step, wt),
        st.lists(LEAF, max_size=9).map(tuple),
    ).map(list)


def safe_payload(value: Any, log_dir: str) -> bytes:
    """msgpack of an arbitrary value, never an OPEN record for a dir outside ``log_dir``."""
    if (
        isinstance(value, list)
        and len(value) == 8
        and value[0] == wire.OPEN
        and isinstance(value[2], str)
        and not value[2].startswith(log_dir)
    ):
        value = [*value[:2], "relative", *value[3:]]
    return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]


def ring_ops(log_dir: str) -> st.SearchStrategy[list[tuple[Any, ...]]]:
    op = st.one_of(
        # raw bytes anywhere in the data area
        st.tuples(
            st.just("raw"), st.integers(0, RING_CAP - 1), st.binary(min_size=1, max_size=300)
        ),
        # a record with the right checksum and an arbitrary or structured payload
        st.tuples(
            st.just("record"), st.one_of(ring_records(log_dir), MSGPACK, st.binary(max_size=64))
        ),
        # a record with a wrong checksum or length
        st.tuples(
            st.just("bad_record"),
            ring_records(log_dir),
            st.integers(0, 2**32 - 1),
            st.integers(0, 2**32 - 1),
        ),
        st.tuples(st.just("head"), HEAD),
        st.tuples(st.just("tail"), HEAD),
        st.tuples(st.just("bell"), st.integers(0, 2**64 - 1)),
        st.tuples(st.just("dropped"), HEAD),
    )
    return st.lists(op, min_size=1, max_size=8)


def test_fuzz_ring_contents(
    fuzz_daemon: DaemonEnv,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A ring the daemon adopted gets arbitrary bytes, records, head, tail and bell
    words; the daemon must answer status, and a good writer in this process must
    still have its flushes acknowledged and every event written."""
    log_dir = str(tmp_path / "hostile")
    good_dir = tmp_path / "good"
    w = SummaryWriter(good_dir)
    steps = 0
    with fuzzing(fuzz_daemon, "ring", tmp_path_factory, capsys) as f:

        @settings(max_examples=150, **FUZZ_SETTINGS)
        @given(ring_ops(log_dir), st.booleans())
        def run(ops: list[tuple[Any, ...]], commit: bool) -> None:
            nonlocal steps
            f.attach()
            path = f.rings[-1]
            fd = os.open(path, os.O_RDWR)
            mm = mmap.mmap(fd, HEADER_SIZE + RING_CAP)
            os.close(fd)
            head = 0
            try:
                for o in ops:
                    if o[0] == "raw":
                        data = o[2][: RING_CAP - o[1]]
                        mm[HEADER_SIZE + o[1] : HEADER_SIZE + o[1] + len(data)] = data
                    elif o[0] in ("record", "bad_record"):
                        payload = (
                            safe_payload(o[1], log_dir) if not isinstance(o[1], bytes) else o[1]
                        )
                        payload = payload or b"\xc0"
                        total = (8 + len(payload) + 7) & ~7
                        if head + total > RING_CAP:
                            continue
                        n, crc = len(payload), crc32(payload)
                        if o[0] == "bad_record":
                            n, crc = (o[2], crc) if o[2] % 2 else (n, o[3])
                        struct.pack_into("<II", mm, HEADER_SIZE + head, n, crc)
                        mm[HEADER_SIZE + head + 8 : HEADER_SIZE + head + 8 + len(payload)] = payload
                        head += total
                        if commit:
                            struct.pack_into("<Q", mm, 64, head)
                    elif o[0] == "head":
                        struct.pack_into("<Q", mm, 64, o[1])
                    elif o[0] == "tail":
                        struct.pack_into("<Q", mm, 128, o[1])
                    elif o[0] == "bell":
                        struct.pack_into("<Q", mm, 136, o[1])
                    else:
                        struct.pack_into("<Q", mm, 192, o[1])
            finally:
                mm.close()
            try:
                f.sock.send(wire.pack({"t": "bell"}))
                f.check(ops)
                w.add_scalar("fuzz/good", float(steps), steps)
                w.flush()
                steps += 1
                assert w.statistics().flushes_timed_out == 0
            finally:
                f.sock.send(wire.pack({"t": "bye"}))  # the daemon removes the ring

        run()
        assert f.examples >= 150
    w.close()
    assert good_points(good_dir) == Counter({("fuzz/good", i): 1 for i in range(steps)})
    assert_whole_event_files(tmp_path)
