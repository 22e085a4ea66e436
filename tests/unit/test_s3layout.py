"""The s3:// object layout: names, headers, sealing, sequence claims, recovery.

The property test plays N nodes uploading through ``SequenceClaimer`` against
a simulated store with S3's conditional create, interleaved one request at a
time with a reader that follows TensorBoard's ``DirectoryWatcher`` (list,
read the current object, move to ``min(name > current)``, never back).
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
        L.segment_tag("a/b", 1)


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


def test_claimer_lists_first_then_creates_after_highest() -> None:
    c = L.SequenceClaimer("r")
    assert c.next_action() == L.Action(L.Step.LIST)
    c.on_listed([L.object_key("r", 1), L.object_key("r", 2)])
    assert c.next_action() == L.Action(L.Step.CREATE, seq=3)
    c.on_conflict(3)
    assert c.next_action() == L.Action(L.Step.LIST, start_after=L.object_key("r", 3))
    c.on_listed([L.object_key("r", 4), L.object_key("r", 5)])
    assert c.next_action() == L.Action(L.Step.CREATE, seq=6)
    c.on_created(6)
    assert c.next_action() == L.Action(L.Step.CREATE, seq=7)
    c.forget()
    assert c.next_action() == L.Action(L.Step.LIST, start_after=L.object_key("r", 6))
    fresh = L.SequenceClaimer("r")
    fresh.forget()
    assert fresh.next_action() == L.Action(L.Step.LIST)


def test_recovered() -> None:
    assert L.recovered("n/3", [7, 8], {7: "m/1", 8: "n/3"}) == 8
    assert L.recovered("n/3", [7, 8], {7: "m/1", 8: None}) is None
    assert L.recovered("n/3", [], {}) is None


# -- property: any interleaving of N nodes keeps every event visible -----------


class Store:
    """S3 as the layout sees it: atomic conditional create, sorted listing."""

    def __init__(self) -> None:
        self.objects: dict[str, str] = {}

    def create(self, key: str, tag: str) -> bool:
        if key in self.objects:
            return False
        # The layout's promise: a new name is above every existing name.
        assert all(key > k for k in self.objects), (key, sorted(self.objects))
        self.objects[key] = tag
        return True

    def list_after(self, start_after: str | None) -> list[str]:
        return sorted(k for k in self.objects if start_after is None or k > start_after)


PREFIX = "runs/r"


def node(store: Store, name: str, segments: int) -> Iterator[None]:
    """One node uploading ``segments`` segments; yields between requests."""
    claimer = L.SequenceClaimer(PREFIX)
    for j in range(segments):
        while True:
            act = claimer.next_action()
            yield
            if act.step is L.Step.LIST:
                claimer.on_listed(store.list_after(act.start_after))
                continue
            if store.create(L.object_key(PREFIX, act.seq), f"{name}/{j}"):
                claimer.on_created(act.seq)
                break
            claimer.on_conflict(act.seq)


class Reader:
    """TensorBoard's DirectoryWatcher over the store, one request per step."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.path: str | None = None
        self.read_in_path = False
        self.seen: list[str] = []

    def _load_current(self) -> None:
        # Objects are immutable: a path is read whole, once.
        if self.path is not None and not self.read_in_path:
            self.seen.append(self.store.objects[self.path])
            self.read_in_path = True

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
            self.path, self.read_in_path = min(later), False
            yield


@settings(max_examples=200, deadline=None)
@given(
    segments=st.lists(st.integers(0, 6), min_size=1, max_size=4),
    schedule=st.lists(st.integers(0, 4), max_size=200),
)
def test_any_interleaving_keeps_every_event_visible(
    segments: list[int], schedule: list[int]
) -> None:
    store = Store()
    actors: list[Iterator[None] | None] = [node(store, f"n{i}", n) for i, n in enumerate(segments)]
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
    assert sorted(reader.seen) == expected  # every segment once, none hidden
    seqs = sorted(L.parse_seq(k, PREFIX) or 0 for k in store.objects)
    assert seqs == list(range(1, len(seqs) + 1))  # no gaps


def test_claimer_lists_before_a_large_body_once_shared() -> None:
    c = L.SequenceClaimer("r", probe_bytes=1000)
    c.on_listed([L.object_key("r", 2)])
    c.on_created(3)
    assert c.next_action(5000) == L.Action(L.Step.CREATE, seq=4)  # alone: no probe
    c.on_conflict(4)  # another node
    c.on_listed([L.object_key("r", 5)])
    assert c.shared
    assert c.next_action(5000) == L.Action(L.Step.CREATE, seq=6)  # just listed
    c.on_created(6)
    assert c.next_action(999) == L.Action(L.Step.CREATE, seq=7)  # small: try directly
    assert c.next_action(1000) == L.Action(L.Step.LIST, start_after=L.object_key("r", 6))
    c.on_listed([L.object_key("r", 7)])
    assert c.next_action(1000) == L.Action(L.Step.CREATE, seq=8)
    other = L.SequenceClaimer("r")
    other.on_listed([])
    other.on_created(1)
    other.on_listed([L.object_key("r", 1), L.object_key("r", 2)])  # someone made 2
    assert other.shared
