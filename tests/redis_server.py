"""Redis for tests: a unique key prefix on the shared server (127.0.0.1:6379, cleaned up after
the test), and private ``redis-server`` processes that a test may kill and restart."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import redis

__all__ = ["SHARED_REDIS_URL", "RedisServer", "delete_prefix", "private_redis", "unique_prefix"]

SHARED_REDIS_URL = "redis://127.0.0.1:6379/0"


def unique_prefix(label: str) -> str:
    return f"test-{label}-{uuid.uuid4().hex[:10]}"


def delete_prefix(url: str, prefix: str) -> None:
    """Remove every key of ``prefix`` (a test's own keys only)."""
    with contextlib.suppress(redis.ConnectionError):
        client = redis.Redis.from_url(url)
        try:
            keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A ``redis-server`` of the test's own, memory only, on a fixed port across restarts."""

    def __init__(self, log_path: Path, port: int | None = None) -> None:
        self.port = port or _free_port()
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
                + ["--save", "", "--appendonly", "no"],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.ConnectionError):
                client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
                try:
                    if client.ping():
                        return
                finally:
                    client.close()
            time.sleep(0.05)
        raise AssertionError(f"redis-server on {self.port} did not start: {self.log_path}")

    def kill(self) -> None:
        """SIGKILL: Redis disappears with its data."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None


@contextlib.contextmanager
def private_redis(log_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(log_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()
