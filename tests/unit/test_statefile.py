"""What a restarted daemon makes of the last write its predecessor began
(``summaryd.daemon.statefile``): counted if its bytes are there whole, cut off
if it was torn in a file nobody writes, left alone if another daemon's records
are where it was to go (a directory shared by several nodes' daemons)."""

from __future__ import annotations

import zlib
from pathlib import Path

from summaryd.daemon.statefile import HEAD_BYTES, StateFile
from summaryd.daemon.tfrecord import frame

from ..driven import Driven

PEER = Path(__file__).resolve().parent.parent / "peers" / "eventfile_peer.py"


def _intent(path: Path, offset: int, data: bytes) -> dict[str, object]:
    return {
        "path": str(path),
        "offset": offset,
        "length": len(data),
        "crc": zlib.crc32(data),
        "head": data[:HEAD_BYTES],
        "commits": [["c1", 0, 10, 99]],
    }


def _recover(tmp_path: Path, intent: dict[str, object]) -> list[list[int]]:
    sf = StateFile(str(tmp_path / "state.bin"))
    sf.save({"c1": {"written": []}}, intent)
    sf.close()
    clients = StateFile(str(tmp_path / "state.bin")).recover()
    return list(clients["c1"]["written"])


EARLIER = frame(b"earlier record")
OURS = frame(b"our write, record 1") + frame(b"our write, record 2")
THEIRS = frame(b"another daemon's record written after our death")


def test_a_whole_write_counts(tmp_path: Path) -> None:
    f = tmp_path / "events.out.tfevents.1.h.1.1"
    f.write_bytes(EARLIER + OURS)
    assert _recover(tmp_path, _intent(f, len(EARLIER), OURS)) == [[0, 10, 99]]
    assert f.read_bytes() == EARLIER + OURS


def test_a_torn_write_in_a_finished_file_is_cut_off(tmp_path: Path) -> None:
    f = tmp_path / "events.out.tfevents.1.h.1.1"
    f.write_bytes(EARLIER + OURS[:30])
    assert _recover(tmp_path, _intent(f, len(EARLIER), OURS)) == []
    assert f.read_bytes() == EARLIER


def test_another_daemons_records_at_the_offset_are_neither_counted_nor_cut(
    tmp_path: Path,
) -> None:
    """Our daemon died before its write; another node's daemon appended there."""
    f = tmp_path / "events.out.tfevents.1.h.1.1"
    for theirs in (THEIRS, THEIRS + THEIRS + THEIRS, THEIRS[: len(OURS) - 1]):
        f.write_bytes(EARLIER + theirs)
        assert _recover(tmp_path, _intent(f, len(EARLIER), OURS)) == []
        assert f.read_bytes() == EARLIER + theirs


def test_a_torn_write_in_a_file_another_daemon_writes_is_left_to_it(tmp_path: Path) -> None:
    """Cutting a live shared file could cut what its other writers append; they
    move the run to a new file when they meet the torn tail."""
    node = Driven(PEER)
    try:
        path = Path(node.ask("open", tmp_path, 1))
        with open(path, "ab") as out:
            out.write(EARLIER + OURS[:30])
        assert _recover(tmp_path, _intent(path, len(EARLIER), OURS)) == []
        assert path.read_bytes() == EARLIER + OURS[:30]
    finally:
        node.end()
