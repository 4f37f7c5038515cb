"""A worker killed with SIGKILL mid-stream and restarted ends exactly where an uninterrupted
run ends: nothing lost, nothing counted twice (with its local state kept, and rebuilt from the
changelog after the local RocksDB is deleted)."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from signals_stream.devtools.generator import GeneratorConfig, generate_events
from tests.integration.expected import (
    CONTEXT_LOG,
    buffer_mismatches,
    expected_buffers,
    expected_values,
    lifetime_definitions,
    mismatches,
    publish_log,
)
from tests.integration.workers import Worker, stream_app

# Its waits add up to ~390 s (two workers healthy, 60 s producer, 120 s catch-up).
pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

EVENTS = 4000
USERS = 60


def _produce_in_background(
    bootstrap: str, topic: str, lines: list[bytes], rate: float
) -> threading.Thread:
    async def produce() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, enable_idempotence=False, linger_ms=5
        )
        await producer.start()
        try:
            started = time.monotonic()
            for i, line in enumerate(lines):
                await producer.send(topic, value=line, key=str(uuid.uuid4()).encode())
                ahead = i / rate - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
            await producer.flush()
        finally:
            await producer.stop()

    thread = threading.Thread(target=lambda: asyncio.run(produce()), daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize(
    "keep_local_state", [True, False], ids=["local-state-kept", "local-state-deleted"]
)
def test_sigkill_mid_stream_loses_nothing_and_counts_nothing_twice(
    kafka_broker, tmp_path: Path, keep_local_state: bool
) -> None:
    definitions = lifetime_definitions(tmp_path / "definitions.yaml")
    lines = [
        ev.line
        for ev, _ in zip(
            generate_events(GeneratorConfig(users=USERS, seed=7)), range(EVENTS), strict=False
        )
    ]
    expected = expected_values(definitions, lines)
    buffers = expected_buffers(lines)
    # One input partition keeps each entity's event order identical to the reference pass, so
    # even float sums compare exactly; the entity topic and table still have 4 partitions.
    app = stream_app(kafka_broker, "crash", input_partitions=1)
    input_topic = app.input_topic
    state_dir = tmp_path / "state"
    # Default producer settings: the worker handles Tansu's short end offsets itself.
    env = app.env(state_dir, SIGNALS_DEFINITIONS=str(definitions))
    first = Worker(env, tmp_path / "worker-1.log")
    first.wait_healthy()
    publish_log(first, CONTEXT_LOG)  # agentic-context buffers live in the same rows
    time.sleep(1.5)
    producer = _produce_in_background(kafka_broker.bootstrap, input_topic, lines, rate=1000)
    # Killed mid-stream, once it has really applied events (two entity events per input).
    applied = first.wait_applied(EVENTS // 2)
    first.kill()
    assert applied < 2 * EVENTS, "the worker had applied everything: not a mid-stream crash"
    killed_at_log = first.log_tail(5)
    if not keep_local_state:
        shutil.rmtree(state_dir)
    second = Worker(env, tmp_path / "worker-2.log")
    try:
        second.wait_healthy()
        producer.join(timeout=60)
        deadline = time.monotonic() + 120

        def check() -> list[str]:
            return mismatches(second, expected) or buffer_mismatches(second, buffers)

        wrong = check()
        while wrong and time.monotonic() < deadline:
            time.sleep(1.0)
            wrong = check()
        assert not wrong, (
            "\n".join(wrong[:5])
            + f"\n{len(wrong)} entities differ\n"
            + second.log_tail()
            + killed_at_log
        )
    finally:
        second.stop()
