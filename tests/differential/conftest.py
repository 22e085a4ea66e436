"""One real daemon per differential test module, shared by its many small cases.

The same isolation as the top conftest's ``daemon_env`` + ``daemon`` (own
runtime dir and ring prefix, stopped by PID, rings removed), module-scoped: a
daemon start costs ~0.5 s, and the modules' hundreds of parametrized cases
would otherwise spend their time budget starting daemons.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from ..conftest import DaemonEnv, isolated_env


@pytest.fixture(scope="module")
def _module_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonEnv]:
    with (
        pytest.MonkeyPatch.context() as mp,
        isolated_env(tmp_path_factory.mktemp("shared-daemon"), mp) as d,
    ):
        d.start()
        yield d


@pytest.fixture
def shared_daemon(_module_daemon: DaemonEnv, monkeypatch: pytest.MonkeyPatch) -> DaemonEnv:
    """The module's daemon, its environment in force for this test (a ``daemon``
    test in between has its own and restores ours when it ends)."""
    from summaryd import client

    for k in ("SUMMARYD_RUNTIME_DIR", "SUMMARYD_RING_PREFIX", "SUMMARYD_IDLE_EXIT"):
        if os.environ.get(k) != _module_daemon.env[k]:
            client.shutdown_client(0.0)
            monkeypatch.setenv(k, _module_daemon.env[k])
    monkeypatch.delenv("SUMMARYD_NO_SPAWN", raising=False)
    return _module_daemon
