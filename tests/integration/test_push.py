"""Direct pushes (``POST /api/v1/interventions``) on two real workers of one app: the official
SDK's ``push_intervention`` gets ``success`` when a subscriber on either worker received the
intervention and ``undelivered`` otherwise; the token is required."""

from __future__ import annotations

import asyncio
import queue
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from snowplow_signals import AttributeKeyIdentifiers, InterventionInstance, SignalsSandbox
from snowplow_signals.api_client import SignalsAPIError

from tests.integration.workers import API_TOKEN, StreamApp, Worker, stream_app

pytestmark = pytest.mark.integration


class Subscriber:
    """A raw SSE client in a thread: ``opened`` is set once the stream's headers arrive (the
    worker subscribes before it sends them), every ``data:`` frame lands in ``frames``."""

    def __init__(self, worker: Worker, query: str) -> None:
        self.url = f"{worker.url}/api/v1/interventions?{query}"
        self.opened = threading.Event()
        self.frames: queue.Queue[dict] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Subscriber:
        self._thread.start()
        assert self.opened.wait(5), "the stream opened"
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()  # noticed at the next line; the worker's shutdown ends it at the latest

    def _run(self) -> None:
        with httpx.stream("GET", self.url, timeout=httpx.Timeout(5.0, read=None)) as response:
            assert response.status_code == 200
            self.opened.set()
            for line in response.iter_lines():  # `: ping` comes every 15 s at least
                if line.startswith("data: "):
                    self.frames.put(orjson.loads(line[len("data: ") :]))
                if self._stop.is_set():
                    return

    def next_frame(self, timeout: float = 10.0) -> dict:
        return self.frames.get(timeout=timeout)


@pytest.fixture(scope="module")
def workers(kafka_broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    """Two workers of one app (every worker serves SSE and pushes for every target)."""
    tmp = tmp_path_factory.mktemp("push")
    app = stream_app(kafka_broker, "push")
    started = [Worker(app.env(tmp / f"state-{n}"), tmp / f"worker-{n}.log") for n in (1, 2)]
    try:
        for worker in started:
            worker.wait_healthy()
        yield app, *started
    finally:
        for worker in started:
            worker.stop()


def _sdk(worker: Worker, token: str = API_TOKEN) -> SignalsSandbox:
    return SignalsSandbox(api_url=worker.url, sandbox_token=token)


def _push(worker: Worker, targets: dict[str, list[str]], **fields: object) -> str:
    instance = InterventionInstance(name="direct", version=1, **fields)
    return _sdk(worker).push_intervention(
        targets=AttributeKeyIdentifiers(targets), intervention=instance
    )


def _ids() -> tuple[str, str]:
    return str(uuid.uuid4()), str(uuid.uuid4())


def test_a_push_without_subscribers_is_undelivered(workers) -> None:
    _, pusher, _ = workers
    started = time.monotonic()
    assert _push(pusher, {"domain_userid": [str(uuid.uuid4())]}) == "undelivered"
    assert time.monotonic() - started < 10  # bounded by SIGNALS_PUSH_RECEIPT_TIMEOUT_MS


def test_a_subscriber_on_the_other_worker_receives_the_push(workers) -> None:
    app, pusher, other = workers
    session, user = _ids()
    with Subscriber(other, f"domain_sessionid={session}") as subscriber:
        status = _push(
            pusher,
            {"domain_sessionid": [session, "nobody-" + session], "domain_userid": [user]},
            attributes={"offer": "10%"},
        )
        assert status == "success", other.log_tail()
        frame = subscriber.next_frame()
    assert frame["name"] == "direct" and frame["version"] == 1
    assert frame["attributes"] == {"offer": "10%"}
    assert frame["target_attribute_key"] == {"name": "domain_sessionid", "id": session}
    assert uuid.UUID(frame["intervention_id"])
    # One record per target on the interventions topic, keyed by target id, one shared id.
    records = asyncio.run(_records_of(app, frame["intervention_id"]))
    assert sorted((key, r["target_attribute_key"]["name"]) for key, r in records) == sorted(
        [
            ("nobody-" + session, "domain_sessionid"),
            (session, "domain_sessionid"),
            (user, "domain_userid"),
        ]
    )


def test_the_sdk_subscriber_on_the_pushing_worker_receives_the_push(workers) -> None:
    _, pusher, _ = workers
    user = str(uuid.uuid4())
    subscription = _sdk(pusher).pull_interventions(
        AttributeKeyIdentifiers({"domain_userid": [user]})
    )
    subscription.start()
    try:
        # The SDK gives no sign that its stream is open: push until a subscriber has it.
        statuses = []
        deadline = time.monotonic() + 30
        while "success" not in statuses and time.monotonic() < deadline:
            statuses.append(_push(pusher, {"domain_userid": [user]}, attributes={"n": "1"}))
        assert statuses[-1] == "success", statuses
        received = subscription.get(block=True, timeout=10)
    finally:
        subscription.stop()
    assert received.name == "direct" and received.attributes == {"n": "1"}
    assert received.target_attribute_key.id == user


def test_push_needs_the_token_and_valid_input(workers) -> None:
    _, pusher, _ = workers
    url = f"{pusher.url}/api/v1/interventions?domain_userid=u"
    body = {"name": "direct", "version": 1}
    missing = httpx.post(url, json=body)
    assert missing.status_code == 401 and missing.json()["error"] == "unauthorized"
    with pytest.raises(SignalsAPIError) as refused:
        _sdk(pusher, token="wrong").push_intervention(
            targets=AttributeKeyIdentifiers({"domain_userid": ["u"]}),
            intervention=InterventionInstance(name="direct", version=1),
        )
    assert refused.value.status_code == 401
    status, answer = pusher.request("POST", "/api/v1/interventions", body)
    assert status == 400 and orjson.loads(answer)["error"] == "bad_request"
    status, answer = pusher.request(
        "POST", "/api/v1/interventions?domain_userid=u", {"name": "direct", "version": "x"}
    )
    error = orjson.loads(answer)
    assert status == 422 and error["error"] == "invalid_intervention"
    assert "version" in error["detail"]


async def _records_of(app: StreamApp, intervention_id: str) -> list[tuple[str, dict]]:
    consumer = AIOKafkaConsumer(
        app.out_topic,
        bootstrap_servers=app.broker_url.removeprefix("kafka://"),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: list[tuple[str, dict]] = []
    try:
        deadline = time.monotonic() + 10
        while len(found) < 3 and time.monotonic() < deadline:
            for messages in (await consumer.getmany(timeout_ms=500)).values():
                for message in messages:
                    record = orjson.loads(message.value)
                    if record["intervention_id"] == intervention_id:
                        found.append((message.key.decode(), record))
    finally:
        await consumer.stop()
    return found
