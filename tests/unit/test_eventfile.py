"""One event file per run, whoever writes it (``summaryd.daemon.eventfile``).

Daemons of several nodes (or two daemons on one host) that log into one
directory must write one live file: TensorBoard's Python loader reads a run's
files in name order and never goes back to a file once a later one exists.
Each "daemon" here is a process of its own (``tests/peers/eventfile_peer.py``;
POSIX locks belong to processes), the files are real, and what they hold is
read back with TensorBoard's own loaders, including one that keeps reading
while the files are written (``DirectoryWatcher``, as TensorBoard's reloads).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from tensorboard.backend.event_processing import directory_watcher, io_wrapper
from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader

from summaryd.daemon.eventfile import EventFile, is_live
from summaryd.daemon.tfrecord import frame

from ..driven import Driven

PEER = Path(__file__).resolve().parent.parent / "peers" / "eventfile_peer.py"


class Node(Driven):
    """A process writing one run's event file, like a daemon on another node."""

    def __init__(self) -> None:
        super().__init__(PEER)

    def __call__(self, *command: object) -> str:
        return self.ask(*command)


@pytest.fixture
def nodes() -> Iterator[list[Node]]:
    made: list[Node] = []

    class Make(list[Node]):
        def __call__(self) -> Node:
            made.append(Node())
            return made[-1]

    try:
        yield Make()
    finally:
        for n in made:
            n.end()


class LiveReader:
    """TensorBoard's Python loader of one run, reloaded between writes."""

    def __init__(self, run: Path) -> None:
        self.watcher = directory_watcher.DirectoryWatcher(
            str(run), RawEventFileLoader, io_wrapper.IsTensorFlowEventsFile
        )
        self.seen: list[bytes] = []

    def reload(self) -> list[bytes]:
        self.seen.extend(self.watcher.Load())
        return self.seen


def read_all(run: Path) -> list[bytes]:
    out: list[bytes] = []
    for name in sorted(n for n in os.listdir(run) if "tfevents" in n):
        out.extend(RawEventFileLoader(str(run / name)).Load())
    return out


def tfevents(run: Path) -> list[str]:
    return sorted(n for n in os.listdir(run) if "tfevents" in n)


def test_a_second_node_joins_the_live_file(tmp_path: Path, nodes: list[Node]) -> None:
    a, b = nodes(), nodes()
    reader = LiveReader(tmp_path)
    path_a = a("open", tmp_path, 1)
    a("append", "a0")
    assert reader.reload() == [b"a0"]
    assert b("open", tmp_path, 1) == path_a  # joined, not a file that sorts after
    for i in range(1, 20):
        assert a("append", f"a{i}") == path_a
        assert b("append", f"b{i}", f"b{i}x") == path_a
        reader.reload()
    assert tfevents(tmp_path) == [os.path.basename(path_a)]
    want = sorted(
        [b"a0"]
        + [f"a{i}".encode() for i in range(1, 20)]
        + [f"b{i}{x}".encode() for i in range(1, 20) for x in ("", "x")]
    )
    assert sorted(reader.reload()) == want
    assert sorted(read_all(tmp_path)) == want
    # Each write is whole and in order: b's pairs are never split by a's records.
    seen = reader.seen
    for i in range(1, 20):
        j = seen.index(f"b{i}".encode())
        assert seen[j + 1] == f"b{i}x".encode()


def test_a_finished_file_is_not_joined(tmp_path: Path, nodes: list[Node]) -> None:
    """A closed run's (or a dead daemon's, or torch's) file: a resumed job starts
    a new file that sorts after it, as before."""
    a = nodes()
    first = a("open", tmp_path, 1)
    a("append", "old")
    assert a("close") == first
    assert not is_live(first)
    b = nodes()
    second = b("open", tmp_path, 1)
    assert second != first and os.path.basename(second) > os.path.basename(first)
    assert is_live(second)


def test_a_writer_killed_mid_write_moves_the_run_to_a_new_file(
    tmp_path: Path, nodes: list[Node]
) -> None:
    a, b = nodes(), nodes()
    reader = LiveReader(tmp_path)
    first = a("open", tmp_path, 1)
    assert b("open", tmp_path, 1) == first
    a("append", "a0")
    b("append", "b0")
    reader.reload()
    b("torn", "never-whole")  # b dies holding the append lock
    assert b.proc.wait(10) == -9
    second = a("append", "a1")
    assert second != first and os.path.basename(second) > os.path.basename(first)
    c = nodes()  # b's node restarted: it joins the new file, not the damaged one
    assert c("open", tmp_path, 1) == second
    c("append", "b1")
    a("append", "a2")
    assert reader.reload() == [b"a0", b"b0", b"a1", b"b1", b"a2"]
    assert read_all(tmp_path) == [b"a0", b"b0", b"a1", b"b1", b"a2"]


def test_nodes_opening_at_once_converge_on_one_file(tmp_path: Path, nodes: list[Node]) -> None:
    """Eight nodes open an empty directory together; whatever files the race
    made, every write after the first lands in the newest one, which every
    reader reads last."""
    ns = [nodes() for _ in range(8)]
    for n in ns:  # all asked before any answer is read
        n.send("open", tmp_path, 1)
    for n in ns:
        n.readline()
    paths = {n("append", f"n{i}") for i, n in enumerate(ns)}
    assert paths == {str(tmp_path / tfevents(tmp_path)[-1])}
    reader = LiveReader(tmp_path)
    assert sorted(reader.reload()) == sorted(f"n{i}".encode() for i in range(8))


def test_one_process_never_joins_its_own_file(tmp_path: Path) -> None:
    """Two lives of one run in one daemon (a writer closed and opened again):
    a new file, as torch makes; the earlier one is not taken over."""
    f1 = EventFile.create(str(tmp_path), 1700000000.0, "h", 1, 1, "")
    f2 = EventFile.create(str(tmp_path), 1700000000.0, "h", 1, 2, "")
    try:
        paths = (f1.path, f2.path)
        assert f1.path != f2.path
        f1.append(frame(b"one"))
        f2.append(frame(b"two"))
        assert (f1.path, f2.path) == paths  # nobody moved
        assert read_all(tmp_path) == [b"one", b"two"]
    finally:
        f1.close()
        f2.close()


def test_a_filesystem_without_hard_links_still_gets_a_live_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, nodes: list[Node]
) -> None:
    """Some FUSE and SMB mounts refuse link(): the file is made in place."""

    def no_links(src: str, dst: str) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    f = EventFile.create(str(tmp_path), 1700000000.0, "h", 1, 1, "")
    try:
        f.append(frame(b"one"))
        assert tfevents(tmp_path) == [os.path.basename(f.path)]  # no temporary left
        assert is_live(f.path)
        b = nodes()  # another process joins it
        assert b("open", tmp_path, 1) == f.path
        b("append", "two")
        f.append(frame(b"three"))
        assert read_all(tmp_path) == [b"one", b"two", b"three"]
        assert os.listdir(tmp_path) == [os.path.basename(f.path)]
    finally:
        f.close()


def test_a_file_that_began_a_resumed_life_says_at_which_step(tmp_path: Path) -> None:
    from summaryd.daemon import encode
    from summaryd.daemon.eventfile import file_life

    header = frame(encode.file_header(1.0))
    pair = frame(encode.file_version(2.0, 50)) + frame(encode.session_start(2.0, 50))
    scalar = frame(encode.file_version(3.0, 7))  # any event
    for content, life in (
        (header + pair + scalar, 50),
        (header + scalar + pair, None),  # a pair later on starts no file's life
        (header + scalar, None),
        (header, None),
        (b"", None),
    ):
        p = tmp_path / "f"
        p.write_bytes(content)
        fd = os.open(p, os.O_RDONLY)
        try:
            assert file_life(fd) == life
        finally:
            os.close(fd)
    assert encode.without_purge_pair(header + pair + scalar, 50) == header + scalar
    assert encode.without_purge_pair(header + pair + scalar, 49) == header + pair + scalar


@pytest.mark.parametrize("chunk", [1 << 20, 40])  # 40: records longer than a slice
def test_whole_end_finds_a_torn_or_zeroed_tail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    from summaryd.daemon import eventfile

    monkeypatch.setattr(eventfile, "_SCAN_CHUNK", chunk)
    recs = [frame(bytes([i]) * (5 + 7 * i)) for i in range(12)]
    whole = b"".join(recs)
    p = tmp_path / "f"
    for content, want in (
        (whole, len(whole)),
        (whole[:-3], len(whole) - len(recs[-1])),  # a write cut short
        (whole + bytes(16), None),  # zeros a crash left: not a record
        (b"", 0),
    ):
        p.write_bytes(content)
        fd = os.open(p, os.O_RDONLY)
        try:
            end = eventfile.whole_end(fd, 0, len(content))
        finally:
            os.close(fd)
        if want is None:
            assert end != len(content)
        else:
            assert end == want


def test_many_writers_killed_and_replaced_while_a_reader_follows(
    tmp_path: Path, nodes: list[Node]
) -> None:
    """Four nodes append at once, round after round, while TensorBoard's loader
    reads; each round one node dies in the middle of a write and a new one
    takes its place.  The reader sees every whole write exactly once, each
    node's in its order, and nothing of the torn ones."""
    reader = LiveReader(tmp_path)
    live = [nodes() for _ in range(4)]
    for n in live:
        n("open", tmp_path, 1)
    want: list[bytes] = []
    for r in range(6):
        for i, n in enumerate(live):
            n.send("burst", f"r{r}n{i}", 40)
        for _ in range(3):
            reader.reload()  # while the bursts are written
        for i, n in enumerate(live):
            n.readline()
            want += [f"r{r}n{i}-{k}".encode() for k in range(40)]
        victim = r % len(live)
        live[victim].send("torn", f"never-r{r}")
        assert live[victim].proc.wait(10) == -9
        live[victim] = nodes()
        live[victim]("open", tmp_path, 1)
        reader.reload()
    for n in live:
        n("append", "last")
    seen = reader.reload()
    assert sorted(seen) == sorted(want + [b"last"] * 4)
    for r in range(6):  # each node's records in the order it wrote them
        for i in range(4):
            mine = [x for x in seen if x.startswith(f"r{r}n{i}-".encode())]
            assert mine == [f"r{r}n{i}-{k}".encode() for k in range(40)]
    assert sorted(read_all(tmp_path)) == sorted(seen)


def test_a_suspended_file_follows_the_run_when_it_is_written_again(
    tmp_path: Path, nodes: list[Node]
) -> None:
    """The daemon closes descriptors it has too many of (``suspend``): its file
    is not live meanwhile, so another node starts the next file; the next
    append goes there, where every reader reads last."""
    reader = LiveReader(tmp_path)
    f = EventFile.create(str(tmp_path), 1700000000.0, "h", 1, 1, "")
    try:
        f.append(frame(b"a"))
        first = f.path
        f.suspend()
        b = nodes()
        second = b("open", tmp_path, 1)
        assert second != first
        b("append", "b")
        assert reader.reload() == [b"a", b"b"]
        f.append(frame(b"c"))
        assert f.path == second
        b("append", "d")
        assert reader.reload() == [b"a", b"b", b"c", b"d"]
    finally:
        f.close()
