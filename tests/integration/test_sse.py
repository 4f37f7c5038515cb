"""Interventions reach Server-Sent Events subscribers: the official Python SDK's
``pull_interventions`` and a raw EventSource-style client, on a real worker."""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from pathlib import Path

import httpx
import orjson
import pytest
from snowplow_signals import AttributeKeyIdentifiers, SignalsSandbox

from signals_stream.devtools.generator import GeneratorConfig, generate_events
from signals_stream.devtools.produce import produce_records
from tests.integration.workers import running_worker, stream_app
from tests.unit.engine.test_engine_interventions import EXAMPLE, _run

# Its waits add up to ~300 s (worker healthy, three 60 s waits, a 20 s stop).
pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def _raw_client(url: str, frames: queue.Queue[str], opened: threading.Event) -> None:
    with httpx.stream("GET", url, timeout=httpx.Timeout(5.0, read=None)) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        opened.set()
        for line in response.iter_lines():
            frames.put(line)
            if line.startswith("data: "):
                return


def test_sdk_and_raw_subscribers_receive_their_interventions(kafka_broker, tmp_path: Path) -> None:
    now = int(time.time() * 1000)
    events = generate_events(GeneratorConfig(users=40, seed=5, start_ms=now - 600_000))
    lines = [next(events).line for _ in range(2000)]
    expected_sent, _ = _run(lines)
    shoppers = sorted(
        {i["target_attribute_key"]["id"] for i in expected_sent if i["name"] == "first_cart_add"}
    )
    assert len(shoppers) >= 2, "the workload has at least two shoppers"
    app = stream_app(kafka_broker, "sse")
    env = app.env(tmp_path / "state", SIGNALS_DEFINITIONS=str(EXAMPLE))
    with running_worker(env, tmp_path / "worker.log") as worker:
        status, body = worker.get("/api/v1/interventions")
        assert status == 400 and orjson.loads(body)["error"] == "bad_request"
        signals = SignalsSandbox(api_url=worker.url, sandbox_token="not-checked-for-sse")
        subscription = signals.pull_interventions(
            AttributeKeyIdentifiers({"domain_userid": [shoppers[0]]})
        )
        subscription.start()
        frames: queue.Queue[str] = queue.Queue()
        opened = threading.Event()
        raw = threading.Thread(
            target=_raw_client,
            args=(f"{worker.url}/api/v1/interventions?domain_userid={shoppers[1]}", frames, opened),
            daemon=True,
        )
        raw.start()
        assert opened.wait(2.5), "headers flushed at once (the browser plugin waits 2.5 s)"
        worker.wait_streams(2)  # the SDK's request is open too
        try:
            records = ((None, line) for line in lines)
            asyncio.run(produce_records([kafka_broker.bootstrap], app.input_topic, records))
            received = subscription.get(block=True, timeout=60)
            assert received.name in {"first_cart_add", "offer_help_after_cart_removals"}
            assert received.target_attribute_key.id == shoppers[0]
            data = None
            deadline = time.monotonic() + 60
            while data is None and time.monotonic() < deadline:
                line = frames.get(timeout=60)
                if line.startswith("data: "):
                    data = orjson.loads(line[len("data: ") :])
                else:
                    # No `event:` names (browsers listen for `message`); ids for resuming.
                    assert line == "" or line.startswith((":", "id: ")), line
            assert data is not None and data["target_attribute_key"]["id"] == shoppers[1]
        finally:
            subscription.stop()
        deadline = time.monotonic() + 60
        fired = 0
        while fired < len(shoppers) and time.monotonic() < deadline:
            fired = orjson.loads(worker.get("/stats")[1])["interventions"]
            time.sleep(0.5)
        assert fired >= len(shoppers)  # every shopper's first cart add fired
