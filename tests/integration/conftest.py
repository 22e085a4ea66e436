"""Fixtures shared by the integration tests of one theme split across modules.

``fuzz_daemon`` (over the module-scoped ``_fuzz_daemon``): one real daemon per
fuzzing module, restarted if an earlier test broke it, for
``test_hostile_fuzz.py`` and ``test_hostile_arrays.py``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from ..conftest import DaemonEnv, isolated_env
from .hostile_fuzz import answers_status


@pytest.fixture(scope="module")
def _fuzz_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonEnv]:
    """One real daemon for the fuzz tests (the isolation of conftest's ``daemon``)."""
    with (
        pytest.MonkeyPatch.context() as mp,
        isolated_env(tmp_path_factory.mktemp("fuzz-daemon"), mp) as d,
    ):
        d.start()
        yield d


@pytest.fixture
def fuzz_daemon(_fuzz_daemon: DaemonEnv, monkeypatch: pytest.MonkeyPatch) -> DaemonEnv:
    """The module's daemon with its environment in force; restarted if an earlier
    test broke it, so each test judges only what it sent."""
    from summaryd import client

    for k in ("SUMMARYD_RUNTIME_DIR", "SUMMARYD_RING_PREFIX", "SUMMARYD_IDLE_EXIT"):
        if os.environ.get(k) != _fuzz_daemon.env[k]:
            client.shutdown_client(0.0)
            monkeypatch.setenv(k, _fuzz_daemon.env[k])
    monkeypatch.setenv("SUMMARYD_NO_SPAWN", "1")
    monkeypatch.setenv("SUMMARYD_FLUSH_TIMEOUT", "3")
    if not answers_status(_fuzz_daemon):
        _fuzz_daemon.stop(timeout=5)
        for name in _fuzz_daemon.rings():
            os.unlink(os.path.join("/dev/shm", name))
        _fuzz_daemon.start()
    return _fuzz_daemon
