"""One real daemon per differential test module, shared by its many small cases.

The same isolation as the top conftest's ``daemon_env`` + ``daemon`` (own
runtime dir and ring prefix, stopped by PID, rings removed), module-scoped: a
daemon start costs ~0.5 s, and the modules' hundreds of parametrized cases
would otherwise spend their time budget starting daemons.
"""

from __future__ import annotations

import pytest

from ..conftest import DaemonEnv, use_daemon


@pytest.fixture
def shared_daemon(module_daemon: DaemonEnv, monkeypatch: pytest.MonkeyPatch) -> DaemonEnv:
    """The module's daemon, its environment in force for this test."""
    use_daemon(module_daemon, monkeypatch)
    monkeypatch.delenv("SUMMARYD_NO_SPAWN", raising=False)
    return module_daemon
