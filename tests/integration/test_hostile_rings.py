"""A daemon no client can break: hostile rings, against a real daemon.

A hostile peer (``tests/peers/hostile_client.py``) misbehaves with its rings
beside a well-behaved client, and ``hostile_helpers.scenario`` checks the
daemon, the good client's run and every event file afterwards, as
``test_hostile_messages.py`` describes. A test that finds a bug asserts the
right behaviour and fails; see its docstring.

Covered here: garbage records and records for unknown writers (counted and
skipped), a corrupt ring (dropped alone), rings the daemon must refuse (mode
0644 among them), and a truncated ring.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from summaryd.paths import locations

from ..conftest import DaemonEnv, read_events
from .hostile_helpers import ask_status, malformed_total, scenario

pytestmark = pytest.mark.integration


# -- scenarios: the misbehaviour the daemon already handles -------------------------


def test_garbage_records_are_counted_and_skipped(daemon: DaemonEnv, tmp_path: Path) -> None:
    count = 300
    _, bad = scenario(daemon, tmp_path, "garbage_records", HOSTILE_COUNT=str(count))
    assert bad["hello"]["t"] == "welcome"
    assert bad["acked"], "the daemon acknowledges a flush past garbage records"
    assert malformed_total(daemon) == count
    warnings_ = [r for r in bad["replies"] if r["t"] == "notice" and r["level"] == "warning"]
    assert 1 <= len(warnings_) <= 20  # NOTICE_LIMIT
    # The hostile's own good records around the garbage are written.
    assert Counter(v.tag for e in read_events(tmp_path / "hostile") for v in e.summary.value) == {
        "hostile/ok": 5
    }


def test_records_for_unknown_writers_are_counted_and_skipped(
    daemon: DaemonEnv, tmp_path: Path
) -> None:
    count = 220
    _, bad = scenario(daemon, tmp_path, "unknown_writer", HOSTILE_COUNT=str(count))
    assert bad["acked"]
    assert malformed_total(daemon) == count
    # Nothing escaped the log dir, nor landed under a relative or NUL-bearing name.
    assert not (tmp_path / "escape").exists()
    assert all("tfevents" in p.name for p in (tmp_path / "hostile").iterdir())


@pytest.mark.parametrize("mode", ["torn_records", "bad_length"])
def test_corrupt_ring_is_dropped_alone(daemon: DaemonEnv, tmp_path: Path, mode: str) -> None:
    _, bad = scenario(daemon, tmp_path, mode)
    assert bad["acked_before"]
    notice = bad["notice"]
    assert notice is not None and "ring corrupt" in notice["msg"], bad
    # Records before the corrupt one are written; none after it.
    tags = Counter(
        (v.tag, e.step) for e in read_events(tmp_path / "hostile") for v in e.summary.value
    )
    assert tags == Counter({("hostile/ok", i): 1 for i in range(10)})


def test_rings_the_daemon_must_refuse(daemon: DaemonEnv, tmp_path: Path) -> None:
    _, bad = scenario(daemon, tmp_path, "bad_ring_header")
    assert set(bad["hello"].values()) == {"notice"}, bad["hello"]
    st = ask_status(locations(daemon.env))
    assert st is not None
    assert not {c["sid"] for c in st["clients"]} & set(bad["sids"].values())


def test_ring_with_mode_0644_is_refused(daemon: DaemonEnv, tmp_path: Path) -> None:
    _, bad = scenario(daemon, tmp_path, "bad_ring_mode")
    assert bad["hello"] == {"mode_0644": "notice"}
    assert not (tmp_path / "hostile").exists()  # its OPEN record was never read


# -- scenarios that find bugs (each asserts the right behaviour) --------------------


def test_truncated_ring_does_not_kill_the_daemon(daemon: DaemonEnv, tmp_path: Path) -> None:
    """BUG: a client truncates its adopted ring; the daemon's next touch of the
    mapping (bell word, drain, status) is SIGBUS.  The peer truncates while the
    daemon sleeps: a truncation racing the very store cannot be survived by a
    process that maps the file (only a sealed memfd would rule it out)."""
    _, bad = scenario(daemon, tmp_path, "truncate_ring")
    assert bad["acked"]
