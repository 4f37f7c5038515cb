"""``signals-stream interventions``: the example consumer prints matching interventions."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid

import orjson
import pytest

from signals_stream.devtools.produce import produce_records
from signals_stream.kafka.topics import TopicSpec, ensure_topics

pytestmark = pytest.mark.integration


def test_the_cli_prints_interventions_for_the_requested_targets(kafka_broker) -> None:
    topic = f"cli-{uuid.uuid4().hex[:8]}-out"
    asyncio.run(ensure_topics([kafka_broker.bootstrap], [TopicSpec(topic, 2)]))
    instances = [
        {"intervention_id": str(n), "name": "r", "version": 1, "attributes": {},
         "target_attribute_key": {"name": "domain_userid", "id": target}}
        for n, target in enumerate(["u2", "u1", "u2", "u1"])
    ]  # fmt: skip
    records = ((i["target_attribute_key"]["id"].encode(), orjson.dumps(i)) for i in instances)
    asyncio.run(produce_records([kafka_broker.bootstrap], topic, records))
    env = {**os.environ, "SIGNALS_BROKER": kafka_broker.url, "SIGNALS_INTERVENTIONS_TOPIC": topic}
    process = subprocess.Popen(
        [sys.executable, "-m", "signals_stream.cli", "interventions", "--from-beginning",
         "--key", "domain_userid=u1"],
        stdout=subprocess.PIPE,
        env=env,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        printed = [orjson.loads(process.stdout.readline()) for _ in range(2)]
    finally:
        process.kill()
        process.wait()
    assert sorted(p["intervention_id"] for p in printed) == ["1", "3"]
    assert all(p["target_attribute_key"]["id"] == "u1" for p in printed)
