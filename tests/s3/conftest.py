"""Fixtures for the ``s3://`` tests: one real SeaweedFS S3 server per session.

Only tests under ``tests/s3/`` see these fixtures, so the rest of the suite
never starts ``weed``. Each test gets its own prefix in the shared bucket
(``s3_prefix``), so tests never read each other's objects.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from ..s3server import WeedServer


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "s3: talks to a real S3 server (SeaweedFS weed mini)")


@pytest.fixture(scope="session")
def s3server() -> Iterator[WeedServer]:
    """A running ``weed mini`` with one bucket; stopped by PID, its dir removed, at session end."""
    with WeedServer.started(bucket="tb-test") as server:
        yield server


@pytest.fixture
def s3_prefix(s3server: WeedServer) -> str:
    """A fresh key prefix (no trailing slash) in the session's bucket."""
    return "t-" + secrets.token_hex(4)


@pytest.fixture
def s3_env(s3server: WeedServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """This process's environment pointed at the server (endpoint, keys, region)."""
    env = s3server.env()
    for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        if k.startswith(("AWS_", "S3_")):
            monkeypatch.setenv(k, v)
    return env
