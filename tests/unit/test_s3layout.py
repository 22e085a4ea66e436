"""The s3:// object layout: names, headers, sealing, sequence claims, recovery.

The property test plays N nodes uploading through ``TailClaimer`` against a
simulated store with S3's conditional writes (``If-None-Match: *`` and
``If-Match``), interleaved one request at a time with a reader that follows
TensorBoard's ``DirectoryWatcher`` (list, read the current object from its
offset, read it once more and move to ``min(name > current)`` when a later
one exists, never back).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tensorboard.backend.event_processing import io_wrapper
from tensorboard.compat.proto import event_pb2

from summaryd.daemon import s3layout as L
from summaryd.daemon.tfrecord import frame, whole_records_length


def test_file_version_event_is_tensorboards() -> None:
    ours = event_pb2.Event.FromString(L.file_version_event(1234.5))
    assert ours == event_pb2.Event(wall_time=1234.5, file_version="brain.Event:2")
    assert L.segment_header(1.0) == frame(L.file_version_event(1.0))


def test_names_sort_as_numbers_and_are_event_files() -> None:
    keys = [L.object_key("a/run", s) for s in (1, 9, 10, 99, 100, 10**11)]
    assert sorted(keys) == keys
    for k in keys:
        assert io_wrapper.IsTensorFlowEventsFile(k)  # "tfevents" in the base name
        assert k.startswith("a/run/events.out.tfevents.")
    assert [L.parse_seq(k, "a/run/") for k in keys] == [1, 9, 10, 99, 100, 10**11]
    assert L.object_key("", 3) == "events.out.tfevents.000000000003.summaryd"


@pytest.mark.parametrize(
    "key",
    [
        "a/run/events.out.tfevents.1700000000.host.1.0",  # torch's own file
        "a/run/sub/events.out.tfevents.000000000001.summaryd",  # a sub-run
        "a/run2/events.out.tfevents.000000000001.summaryd",  # a sibling run
        "a/run/events.out.tfevents.000000000001.summarydx",
    ],
)
def test_parse_seq_ignores_other_keys(key: str) -> None:
    assert L.parse_seq(key, "a/run") is None


def test_prefix_and_seq_bounds() -> None:
    assert L.run_prefix("/a/b/") == "a/b/"
    assert L.run_prefix("") == ""
    with pytest.raises(L.LayoutError):
        L.run_prefix("a//b")
    with pytest.raises(L.LayoutError):
        L.object_key("a", 0)
    with pytest.raises(L.LayoutError):
        L.object_key("a", 10**12)
    with pytest.raises(L.LayoutError):
        L.TailPolicy(max_writes=0)


def test_highest_seq() -> None:
    keys = [L.object_key("r", 4), "r/other", L.object_key("r", 12)]
    assert L.highest_seq(keys, "r") == 12
    assert L.highest_seq([], "r") == 0


def test_seal_policy() -> None:
    p = L.SealPolicy(max_age=5.0, max_bytes=100)
    assert not p.should_seal(0, None, 100.0)
    assert not p.should_seal(50, 10.0, 14.9)
    assert p.should_seal(50, 10.0, 15.0)
    assert p.should_seal(100, 10.0, 10.0)
    assert p.deadline(10.0) == 15.0 and p.deadline(None) is None
    with pytest.raises(L.LayoutError):
        L.SealPolicy(max_age=0)


def test_split_records_keeps_records_whole() -> None:
    recs = [frame(bytes([i]) * n) for i, n in enumerate((10, 50, 5, 200, 1))]
    data = b"".join(recs)
    pieces = L.split_records(data, 80)
    assert b"".join(pieces) == data
    for p in pieces:
        assert whole_records_length(p) == len(p)
        assert len(p) <= 80 or len(p) == len(recs[3])
    with pytest.raises(L.LayoutError):
        L.split_records(data[:-1], 80)
    with pytest.raises(L.LayoutError):
        L.split_records(data + struct.pack("<Q", 5), 80)


def test_claimer_creates_first_object_then_appends_until_sealed() -> None:
    c = L.TailClaimer("r", L.TailPolicy(max_writes=3, max_bytes=1000))
    assert c.next_action(10) == L.Action(L.Step.LIST)
    c.on_listed([])
    a = c.next_action(10)
    assert a == L.Action(L.Step.CREATE, seq=1, writes=1, seal=False)
    c.on_written(a, "e1", 10)
    a = c.next_action(10)
    assert a == L.Action(L.Step.APPEND, seq=1, etag="e1", writes=2, seal=False)
    c.on_written(a, "e2", 20)
    a = c.next_action(10)
    assert a == L.Action(L.Step.APPEND, seq=1, etag="e2", writes=3, seal=True)  # third write
    c.on_written(a, "e3", 30)
    assert c.next_action(10) == L.Action(L.Step.CREATE, seq=2, writes=1, seal=False)


def test_claimer_seals_by_size_and_a_big_chunk_alone() -> None:
    c = L.TailClaimer("r", L.TailPolicy(max_writes=9, max_bytes=100))
    c.on_listed([])
    assert c.next_action(100).seal  # a chunk of max_bytes starts sealed
    a = c.next_action(40)
    c.on_written(a, "e", 40)
    assert c.next_action(59).seal is False
    assert c.next_action(60).seal is True


def test_claimer_after_conflicts() -> None:
    c = L.TailClaimer("r", L.TailPolicy(max_writes=2))
    c.on_listed([L.object_key("r", 1), L.object_key("r", 4)])
    assert c.next_action(5) == L.Action(L.Step.GET, seq=4)  # the newest, to see its state
    c.on_got(4, "x", 50, 1, sealed=False)
    a = c.next_action(5)
    assert a == L.Action(L.Step.APPEND, seq=4, etag="x", writes=2, seal=True)
    c.on_conflict(a)  # someone appended first
    assert c.next_action(5) == L.Action(L.Step.GET, seq=4)
    c.on_got(4, "y", 60, 2, sealed=True)
    a = c.next_action(5)
    assert a == L.Action(L.Step.CREATE, seq=5, writes=1)
    c.on_conflict(a)  # someone created 5
    assert c.next_action(5) == L.Action(L.Step.LIST, start_after=L.object_key("r", 5))
    c.on_listed([L.object_key("r", 6)])
    assert c.next_action(5) == L.Action(L.Step.GET, seq=6)
    c.on_missing(6)  # deleted behind our back: look again from 5
    assert c.next_action(5) == L.Action(L.Step.LIST, start_after=L.object_key("r", 5))
    c.forget()
    assert c.next_action(5).step is L.Step.LIST


def test_foreign_policy_is_respected() -> None:
    """A node with a larger max_writes still never writes an object another sealed."""
    c = L.TailClaimer("r", L.TailPolicy(max_writes=100))
    c.on_listed([L.object_key("r", 1)])
    c.on_got(1, "e", 10, writes=2, sealed=True)
    assert c.next_action(5).step is L.Step.CREATE


def test_landed() -> None:
    assert L.landed(b"abc", b"abc")
    assert not L.landed(b"abc", b"abd")
    assert not L.landed(b"abc", None)


# -- property: any interleaving of N nodes keeps every event visible -----------


class Store:
    """S3 as the layout sees it: conditional create and compare-and-swap, sorted listing.

    An object is a list of chunk names; its ETag is a version number.
    """

    def __init__(self) -> None:
        self.objects: dict[str, tuple[list[str], int, int, bool]] = {}  # chunks, etag, writes
        self.version = 0

    def put(self, key: str, chunks: list[str], a: L.Action) -> str | None:
        cur = self.objects.get(key)
        if a.step is L.Step.CREATE and cur is not None:
            return None
        if a.step is L.Step.APPEND and (cur is None or str(cur[1]) != a.etag):
            return None
        # The layout's promise: only the newest name is ever written.
        assert all(key >= k for k in self.objects), (key, sorted(self.objects))
        self.version += 1
        self.objects[key] = (list(chunks), self.version, a.writes, a.seal)
        return str(self.version)

    def list_after(self, start_after: str | None) -> list[str]:
        return sorted(k for k in self.objects if start_after is None or k > start_after)


PREFIX = "runs/r"


def node(store: Store, name: str, segments: int, policy: L.TailPolicy) -> Iterator[None]:
    """One node uploading ``segments`` chunks; yields between requests."""
    c = L.TailClaimer(PREFIX, policy)
    body: list[str] = []
    for j in range(segments):
        chunk = f"{name}/{j}"
        while True:
            a = c.next_action(1)
            yield
            key = L.object_key(PREFIX, a.seq) if a.seq else ""
            if a.step is L.Step.LIST:
                c.on_listed(store.list_after(a.start_after))
            elif a.step is L.Step.GET:
                got = store.objects.get(key)
                if got is None:
                    c.on_missing(a.seq)
                else:
                    body = list(got[0])
                    c.on_got(a.seq, str(got[1]), len(body), got[2], got[3])
            else:
                new = ([] if a.step is L.Step.CREATE else body) + [chunk]
                etag = store.put(key, new, a)
                if etag is None:
                    c.on_conflict(a)
                    continue
                body = new
                c.on_written(a, etag, len(new))
                break


class Reader:
    """TensorBoard's DirectoryWatcher over the store, one request per step."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.path: str | None = None
        self.offset = 0
        self.seen: list[str] = []

    def _load_current(self) -> None:
        # From the byte offset reached (here: chunks), like its ranged GETs.
        if self.path is not None:
            chunks = self.store.objects[self.path][0]
            self.seen.extend(chunks[self.offset :])
            self.offset = len(chunks)

    def load(self) -> Iterator[None]:
        while True:
            self._load_current()
            yield
            paths = sorted(k for k in self.store.objects if L.parse_seq(k, PREFIX))
            later = [p for p in paths if self.path is None or p > self.path]
            if not later:
                return
            yield
            self._load_current()
            self.path, self.offset = min(later), 0
            yield


@settings(max_examples=200, deadline=None)
@given(
    segments=st.lists(st.integers(0, 6), min_size=1, max_size=4),
    max_writes=st.lists(st.integers(1, 4), min_size=4, max_size=4),
    schedule=st.lists(st.integers(0, 4), max_size=250),
)
def test_any_interleaving_keeps_every_event_visible(
    segments: list[int], max_writes: list[int], schedule: list[int]
) -> None:
    store = Store()
    actors: list[Iterator[None] | None] = [
        node(store, f"n{i}", n, L.TailPolicy(max_writes=max_writes[i]))
        for i, n in enumerate(segments)
    ]
    reader = Reader(store)
    loading: Iterator[None] | None = None
    for pick in schedule:
        if pick < len(actors) and actors[pick] is not None:
            if next(actors[pick], StopIteration) is StopIteration:  # type: ignore[call-overload]
                actors[pick] = None
        else:  # the reader's turn: continue its Load() or start the next one
            loading = loading or reader.load()
            if next(loading, StopIteration) is StopIteration:  # type: ignore[call-overload]
                loading = None
    for a in actors:  # every node finishes its uploads
        if a is not None:
            for _ in a:
                pass
    for _ in loading or ():  # the Load() in progress ends, then one more
        pass
    for _ in reader.load():
        pass
    expected = sorted(f"n{i}/{j}" for i, n in enumerate(segments) for j in range(n))
    assert sorted(reader.seen) == expected  # every chunk once, none hidden
    seqs = sorted(L.parse_seq(k, PREFIX) or 0 for k in store.objects)
    assert seqs == list(range(1, len(seqs) + 1))  # no gaps
    for chunks, _, writes, _ in store.objects.values():
        assert len(chunks) == writes <= max(max_writes)
