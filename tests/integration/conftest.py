"""Fixtures shared by the integration tests of one theme split across modules.

``fuzz_daemon`` (over the top conftest's module-scoped ``module_daemon``): one
real daemon per fuzzing module, restarted if an earlier test broke it, for
``test_hostile_fuzz.py`` and ``test_hostile_arrays.py``.
"""

from __future__ import annotations

import os

import pytest

from ..conftest import DaemonEnv, use_daemon
from .hostile_fuzz import answers_status


@pytest.fixture
def fuzz_daemon(module_daemon: DaemonEnv, monkeypatch: pytest.MonkeyPatch) -> DaemonEnv:
    """The module's daemon with its environment in force; restarted if an earlier
    test broke it, so each test judges only what it sent."""
    use_daemon(module_daemon, monkeypatch)
    monkeypatch.setenv("SUMMARYD_NO_SPAWN", "1")
    monkeypatch.setenv("SUMMARYD_FLUSH_TIMEOUT", "3")
    if not answers_status(module_daemon):
        module_daemon.stop(timeout=5)
        for name in module_daemon.rings():
            os.unlink(os.path.join("/dev/shm", name))
        module_daemon.start()
    return module_daemon
