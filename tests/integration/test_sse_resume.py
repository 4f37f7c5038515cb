"""A subscriber that reconnects with ``Last-Event-ID`` misses no intervention and sees none
twice: across a restart of its worker, and when it moves to another worker.

The interventions are written to the topic by the test (as the entity stage writes them: keyed
by target id), so the expectation is simply the list of ids the test wrote for the target.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from signals_stream.kafka.partitioning import entity_partition
from tests.integration.workers import StreamApp, Worker, running_worker, stream_app

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def _instance(target: str, n: int) -> dict:
    return {
        "intervention_id": f"{target}-{n}",
        "name": "resume_test",
        "version": 1,
        "target_attribute_key": {"name": "domain_userid", "id": target},
        "attributes": {"n": n},
    }


def _write(app: StreamApp, bootstrap: str, instances: list[dict]) -> None:
    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            for instance in instances:
                key = instance["target_attribute_key"]["id"].encode()
                await producer.send_and_wait(app.out_topic, orjson.dumps(instance), key=key)
        finally:
            await producer.stop()

    asyncio.run(send())


@dataclass
class _Stream:
    """A raw SSE client in a thread, as a browser's EventSource reads: data and id lines."""

    url: str
    last_event_id: str | None = None
    received: queue.Queue[str] = field(default_factory=queue.Queue)
    comments: list[str] = field(default_factory=list)
    connected: threading.Event = field(default_factory=threading.Event)
    ended: threading.Event = field(default_factory=threading.Event)

    def start(self) -> _Stream:
        threading.Thread(target=self._read, daemon=True).start()
        assert self.connected.wait(30), "the stream opened"
        return self

    def _read(self) -> None:
        headers = {"Last-Event-ID": self.last_event_id} if self.last_event_id else {}
        try:
            with httpx.stream(
                "GET", self.url, headers=headers, timeout=httpx.Timeout(5.0, read=None)
            ) as response:
                assert response.status_code == 200
                for line in response.iter_lines():
                    if line.startswith("id: "):
                        self.last_event_id = line[4:]
                        self.connected.set()  # the opening frame carries the first id
                    elif line.startswith("data: "):
                        self.received.put(orjson.loads(line[6:])["intervention_id"])
                    elif line.startswith(":"):
                        self.comments.append(line)
        except httpx.HTTPError:
            pass
        finally:
            self.ended.set()

    def take(self, count: int, timeout_s: float = 30.0) -> list[str]:
        deadline = time.monotonic() + timeout_s
        return [
            self.received.get(timeout=max(0.1, deadline - time.monotonic())) for _ in range(count)
        ]

    def nothing_more(self, wait_s: float = 2.0) -> bool:
        time.sleep(wait_s)
        return self.received.empty()


def _documented_client() -> Callable[[str, dict[str, str]], Iterator[dict]]:
    """The reconnecting Python client of docs/api.md, as a user would copy it."""
    text = (Path(__file__).parents[2] / "docs" / "api.md").read_text()
    code = text.split("A long-lived Python consumer can resume")[1].split("```python")[1]
    namespace: dict = {}
    exec(code.split("```")[0], namespace)  # noqa: S102 - our own documentation
    return namespace["interventions"]


def _targets(partitions: int) -> tuple[str, str]:
    """Two user ids in different partitions of the interventions topic."""
    first = str(uuid.uuid4())
    while True:
        other = str(uuid.uuid4())
        if entity_partition(other.encode(), partitions) != entity_partition(
            first.encode(), partitions
        ):
            return first, other


def test_a_stream_resumes_across_a_restart_of_its_worker(kafka_broker, tmp_path: Path) -> None:
    app = stream_app(kafka_broker, "resume")
    user, neighbour = _targets(app.partitions)
    url_path = f"/api/v1/interventions?domain_userid={user}"
    env = app.env(tmp_path / "state")
    documented: queue.Queue[str] = queue.Queue()
    with running_worker(env, tmp_path / "first.log") as worker:
        stream = _Stream(worker.url + url_path).start()

        def run_documented_client() -> None:
            for instance in _documented_client()(worker.url, {"domain_userid": user}):
                documented.put(instance["intervention_id"])

        threading.Thread(target=run_documented_client, daemon=True).start()
        worker.wait_streams(2)
        _write(app, kafka_broker.bootstrap, [_instance(user, n) for n in range(3)])
        assert stream.take(3) == [f"{user}-{n}" for n in range(3)]
    assert stream.ended.wait(30), "the stream ends when its worker stops"
    # While no worker runs: four for the subscriber, two for someone else.
    away = [_instance(user, n) for n in range(3, 7)] + [_instance(neighbour, n) for n in range(2)]
    _write(app, kafka_broker.bootstrap, away)
    with running_worker(env, tmp_path / "second.log") as worker:
        resumed = _Stream(worker.url + url_path, last_event_id=stream.last_event_id).start()
        assert resumed.take(4) == [f"{user}-{n}" for n in range(3, 7)]
        _write(app, kafka_broker.bootstrap, [_instance(user, 7)])
        assert resumed.take(1) == [f"{user}-7"]
        assert resumed.nothing_more(), "nothing is sent twice"
        assert not any("resume-incomplete" in c for c in resumed.comments)
        fresh = _Stream(worker.url + url_path).start()  # no Last-Event-ID: from now on
        _write(app, kafka_broker.bootstrap, [_instance(user, 8)])
        assert fresh.take(1) == [f"{user}-8"] and fresh.nothing_more(0.5)
        assert resumed.take(1) == [f"{user}-8"]
        # The documented client reconnected by itself and got each one once, in order.
        got = [documented.get(timeout=30) for _ in range(9)]
        assert got == [f"{user}-{n}" for n in range(9)] and documented.empty()


def test_a_stream_moves_to_another_worker_without_loss(kafka_broker, tmp_path: Path) -> None:
    app = stream_app(kafka_broker, "resume-move")
    user, other_user = _targets(app.partitions)
    url_path = f"/api/v1/interventions?domain_userid={user}&domain_userid={other_user}"
    first = Worker(app.env(tmp_path / "a"), tmp_path / "a.log")
    second = Worker(app.env(tmp_path / "b"), tmp_path / "b.log")
    try:
        first.wait_healthy()
        second.wait_healthy()
        stream = _Stream(first.url + url_path).start()
        _write(app, kafka_broker.bootstrap, [_instance(user, 0), _instance(other_user, 0)])
        assert sorted(stream.take(2)) == sorted([f"{user}-0", f"{other_user}-0"])
        first.kill()
        assert stream.ended.wait(30)
        _write(app, kafka_broker.bootstrap, [_instance(other_user, 1), _instance(user, 1)])
        moved = _Stream(second.url + url_path, last_event_id=stream.last_event_id).start()
        _write(app, kafka_broker.bootstrap, [_instance(user, 2)])
        got = moved.take(3)
        assert sorted(got) == sorted([f"{other_user}-1", f"{user}-1", f"{user}-2"])
        assert got.index(f"{user}-1") < got.index(f"{user}-2")
        assert moved.nothing_more()
    finally:
        first.stop()
        second.stop()
