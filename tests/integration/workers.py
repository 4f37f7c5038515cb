"""Run real ``signals-stream worker`` processes for integration tests."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from signals_stream.kafka.topics import TopicSpec, ensure_topics

__all__ = [
    "API_TOKEN",
    "FAST_GROUP_TIMEOUTS",
    "StreamApp",
    "Worker",
    "free_port",
    "running_worker",
    "stream_app",
]

# Tests run one or two local workers: a short session lets a restarted worker rejoin quickly.
FAST_GROUP_TIMEOUTS = {
    "SIGNALS_BROKER_SESSION_TIMEOUT_S": "6",
    "SIGNALS_BROKER_REBALANCE_TIMEOUT_S": "6",
}


# The bearer token every test worker is started with (SIGNALS_API_TOKEN).
API_TOKEN = "test-token-" + uuid.uuid4().hex


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Worker:
    """A worker subprocess in its own session, stopped by its own pid."""

    def __init__(self, env: dict[str, str], log_path: Path, command: str = "worker") -> None:
        self.web_port = int(env["SIGNALS_WEB_PORT"])
        self.token = env.get("SIGNALS_API_TOKEN")
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "signals_stream.cli", command],  # or "api"
            env={**os.environ, **FAST_GROUP_TIMEOUTS, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def request(
        self, method: str, path: str, body: Any = None, timeout: float = 5.0
    ) -> tuple[int, bytes]:
        """One HTTP call with the worker's token; a JSON ``body`` when given."""
        data = None if body is None else orjson.dumps(body)
        headers = {**self.auth_headers, "Content-Type": "application/json"}
        req = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
        req = urllib.request.Request(self.url + path, headers=self.auth_headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def wait_healthy(self, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"worker exited ({self.process.returncode}):\n{self.log_tail()}"
                )
            with contextlib.suppress(OSError):
                if self.get("/healthz", timeout=2)[0] == 200:
                    return
            time.sleep(0.3)
        raise AssertionError(f"worker not healthy after {timeout_s}s:\n{self.log_tail()}")

    def stats(self) -> dict[str, Any]:
        status, body = self.get("/stats", timeout=2)
        assert status == 200, body
        return dict(orjson.loads(body))

    def wait_applied(self, at_least: int, timeout_s: float = 60.0) -> int:
        """Wait until this worker has applied ``at_least`` events (``/stats``); how many.

        A crash test kills a worker only once it has really processed events: on a slow
        machine a fixed sleep would silently turn it into a plain restart test.
        """
        deadline = time.monotonic() + timeout_s
        applied = 0
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                applied = int(self.stats()["applied"])
                if applied >= at_least:
                    return applied
            time.sleep(0.05)
        raise AssertionError(f"only {applied} events applied after {timeout_s}s")

    def wait_streams(self, count: int, timeout_s: float = 30.0) -> None:
        """Wait until ``count`` SSE streams are open here (subscribed: they get what fires)."""
        deadline = time.monotonic() + timeout_s
        while self.stats()["sse_streams"] < count:
            assert time.monotonic() < deadline, f"{count} streams not open after {timeout_s} s"
            time.sleep(0.05)

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL: a crash, no clean shutdown."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self._log.close()

    def stop(self, grace_s: float = 20.0) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


@contextlib.contextmanager
def running_worker(env: dict[str, str], log_path: Path) -> Iterator[Worker]:
    worker = Worker(env, log_path)
    try:
        worker.wait_healthy()
        yield worker
    finally:
        worker.stop()


@dataclasses.dataclass(frozen=True)
class StreamApp:
    """A signals-stream app under test: its own app id and topics on the shared broker."""

    broker_url: str
    app_id: str
    partitions: int

    @property
    def input_topic(self) -> str:
        return f"{self.app_id}-in"

    @property
    def bad_topic(self) -> str:
        return f"{self.app_id}-bad"

    @property
    def out_topic(self) -> str:
        return f"{self.app_id}-out"

    def env(self, state_dir: Path, **extra: str) -> dict[str, str]:
        """The environment of one worker of this app (its own web port and state)."""
        return {
            "SIGNALS_BROKER": self.broker_url,
            "SIGNALS_APP_ID": self.app_id,
            "SIGNALS_INPUT_TOPIC": self.input_topic,
            "SIGNALS_BAD_EVENTS_TOPIC": self.bad_topic,
            "SIGNALS_INTERVENTIONS_TOPIC": self.out_topic,
            "SIGNALS_PARTITIONS": str(self.partitions),
            "SIGNALS_WEB_PORT": str(free_port()),
            "SIGNALS_DATA_DIR": str(state_dir),
            "SIGNALS_API_TOKEN": API_TOKEN,
            **extra,
        }


def stream_app(broker: Any, prefix: str, *, input_partitions: int = 4) -> StreamApp:
    """A fresh app id with its input, bad-events and interventions topics created (4
    partitions, or ``input_partitions`` for the input)."""
    app = StreamApp(broker.url, f"{prefix}-{uuid.uuid4().hex[:8]}", partitions=4)
    asyncio.run(
        ensure_topics(
            [broker.bootstrap],
            [
                TopicSpec(app.input_topic, input_partitions),
                TopicSpec(app.bad_topic, app.partitions),
                TopicSpec(app.out_topic, app.partitions),
            ],
        )
    )
    return app


async def read_json_records(
    bootstrap: str, topic: str, expected: int, timeout_s: float, extra_s: float = 0.0
) -> list[dict[str, Any]]:
    """The JSON records of ``topic`` from its start: until ``expected`` arrived (or the
    timeout), then ``extra_s`` more to catch any beyond (duplicates)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    records: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + timeout_s
        quiet_until: float | None = None
        while time.monotonic() < deadline:
            if len(records) >= expected:
                quiet_until = quiet_until or time.monotonic() + extra_s
                if time.monotonic() >= quiet_until:
                    break
            batch = await consumer.getmany(timeout_ms=300)
            for messages in batch.values():
                records.extend(orjson.loads(m.value) for m in messages)
    finally:
        await consumer.stop()
    return records
