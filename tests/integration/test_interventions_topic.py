"""Events in, interventions out on the output topic: once per shopper, SDK-shaped."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from signals_stream.devtools.generator import GeneratorConfig, generate_events
from signals_stream.devtools.produce import produce_records
from tests.integration.workers import running_worker, stream_app
from tests.unit.engine.test_engine_interventions import EXAMPLE, _run

pytestmark = pytest.mark.integration


async def _consume(bootstrap: str, topic: str, quiet_s: float, timeout_s: float) -> list[dict]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    records: list[dict] = []
    try:
        deadline = time.monotonic() + timeout_s
        last_new = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - last_new < quiet_s:
            batch = await consumer.getmany(timeout_ms=500)
            for messages in batch.values():
                for message in messages:
                    record = orjson.loads(message.value)
                    assert message.key.decode() == record["target_attribute_key"]["id"]
                    records.append(record)
                    last_new = time.monotonic()
    finally:
        await consumer.stop()
    return records


def test_rules_fire_once_per_shopper_onto_the_interventions_topic(
    kafka_broker, tmp_path: Path
) -> None:
    now = int(time.time() * 1000)
    events = generate_events(GeneratorConfig(users=40, seed=5, start_ms=now - 600_000))
    lines = [next(events).line for _ in range(2000)]
    expected_sent, _ = _run(lines)
    expected = {
        i["target_attribute_key"]["id"] for i in expected_sent if i["name"] == "first_cart_add"
    }
    app = stream_app(kafka_broker, "rules")
    env = app.env(tmp_path / "state", SIGNALS_DEFINITIONS=str(EXAMPLE))
    with running_worker(env, tmp_path / "worker.log") as worker:
        records = ((None, line) for line in lines)
        asyncio.run(produce_records([kafka_broker.bootstrap], app.input_topic, records))
        received = asyncio.run(_consume(kafka_broker.bootstrap, app.out_topic, 8.0, 90.0))
        first_adds = [r for r in received if r["name"] == "first_cart_add"]
        targets = [r["target_attribute_key"]["id"] for r in first_adds]
        assert expected, "the workload has cart adds"
        assert sorted(targets) == sorted(expected), worker.log_tail()
        assert len({r["intervention_id"] for r in first_adds}) == len(first_adds)
        assert all(isinstance(v, str) for r in received for v in r["attributes"].values())
