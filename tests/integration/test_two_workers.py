"""Two workers on one machine: every entity is answered correctly from either worker's port
(the table view proxies to the worker that owns the entity's partition)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson
import pytest

from signals_stream.devtools.generator import GeneratorConfig, generate_events
from signals_stream.devtools.produce import produce_records
from tests.integration.expected import expected_values, lifetime_definitions, mismatches
from tests.integration.workers import Worker, stream_app

# Its waits add up to ~310 s (two workers healthy, a 90 s convergence deadline).
pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def test_table_views_answer_every_entity_from_either_worker(kafka_broker, tmp_path: Path) -> None:
    definitions = lifetime_definitions(tmp_path / "definitions.yaml")
    generated = generate_events(GeneratorConfig(users=40, seed=11))
    lines = [next(generated).line for _ in range(1500)]
    expected = expected_values(definitions, lines)
    app = stream_app(kafka_broker, "pair", input_partitions=1)
    input_topic = app.input_topic
    workers = [
        Worker(
            app.env(tmp_path / f"w{i}", SIGNALS_DEFINITIONS=str(definitions)),
            tmp_path / f"worker-{i}.log",
        )
        for i in range(2)
    ]
    try:
        for worker in workers:
            worker.wait_healthy()
        asyncio.run(
            produce_records([kafka_broker.bootstrap], input_topic, ((None, line) for line in lines))
        )
        # Both workers own part of the entity partitions once the group has settled.
        deadline = time.monotonic() + 90
        owned: list[int] = []
        while time.monotonic() < deadline:
            owned = [_entity_partitions(w) for w in workers]
            if all(owned) and sum(owned) == 4:
                break
            time.sleep(1.0)
        assert all(owned) and sum(owned) == 4, (owned, workers[0].log_tail(), workers[1].log_tail())
        for worker in workers:
            wrong = mismatches(worker, expected)
            while wrong and time.monotonic() < deadline:
                time.sleep(1.0)
                wrong = mismatches(worker, expected)
            assert not wrong, "\n".join(wrong[:3]) + f"\n{len(wrong)} differ on {worker.url}"
    finally:
        for worker in workers:
            worker.stop()


def _entity_partitions(worker: Worker) -> int:
    status, raw = worker.get("/healthz")
    return int(orjson.loads(raw).get("entity_partitions", 0)) if status == 200 else 0
