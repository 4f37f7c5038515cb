"""A worker killed with SIGKILL mid-stream and restarted sends every firing, and never one
firing under two ids: a replay may fold the events in other batches, and the id names the
event at which the rule's criteria first held, whatever the batches (at least once: the same
id may come twice)."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections import defaultdict
from pathlib import Path

import orjson
import pytest
import yaml
from aiokafka import AIOKafkaConsumer

from signals_stream.devtools.generator import GeneratorConfig, generate_events
from tests.integration.expected import lifetime_definitions
from tests.integration.test_crash_recovery import _produce_in_background
from tests.integration.workers import Worker, stream_app
from tests.unit.engine.test_engine_interventions import _run

# Its waits add up to ~380 s (two workers healthy, 60 s producer, 120 s consume).
pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

EVENTS = 4000
USERS = 60
Firing = tuple[str, str, str]  # rule, key, id of the entity row it fired in
ROW_KEY = {"busy_session": "domain_sessionid"}  # the other rules are on domain_userid rows


def _rule(name: str, attribute: str, at_least: int, *targets: str) -> dict:
    rule = {
        "name": name,
        "version": 1,
        "owner": "crash@example.com",
        "criteria": {"all": [{"attribute": attribute, "operator": ">=", "value": at_least}]},
    }
    if targets:
        rule["target_attribute_keys"] = [{"name": t} for t in targets]
    return rule


def _definitions(path: Path) -> Path:
    """Lifetime attributes only (values that do not move with the wall clock), and rules that
    fire all along the stream: page-view thresholds, a first cart add, and a session rule with
    two targets (one firing, two records, one id)."""
    doc = yaml.safe_load(lifetime_definitions(path).read_text())
    doc["interventions"] = [
        *(_rule(f"page_views_{n}", "ecommerce_user:page_views", n) for n in (1, 3, 10, 25)),
        _rule("first_cart_add", "ecommerce_user:cart_adds", 1),
        _rule(
            "busy_session",
            "ecommerce_session:page_views",
            3,
            "domain_sessionid",
            "domain_userid",
        ),
    ]
    path.write_text(yaml.safe_dump(doc))
    return path


async def _records(bootstrap: str, topic: str, ids: set[str], timeout_s: float) -> list[dict]:
    """Every record of ``topic``, read until all ``ids`` are in and the topic has been quiet
    for a while (the replay may still send duplicates)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    records: list[dict] = []
    seen: set[str] = set()
    try:
        deadline = time.monotonic() + timeout_s
        last_new = time.monotonic()
        while time.monotonic() < deadline and (
            not ids <= seen or time.monotonic() - last_new < 5.0
        ):
            for messages in (await consumer.getmany(timeout_ms=500)).values():
                for message in messages:
                    records.append(orjson.loads(message.value))
                    seen.add(records[-1]["intervention_id"])
                    last_new = time.monotonic()
    finally:
        await consumer.stop()
    return records


def _by_firing(records: list[dict]) -> dict[Firing, set[str]]:
    """(rule, entity the rule was evaluated for) -> the ids it was sent under."""
    firings: dict[Firing, set[str]] = defaultdict(set)
    for record in records:
        target = record["target_attribute_key"]
        if target["name"] == ROW_KEY.get(record["name"], "domain_userid"):
            firings[(record["name"], target["name"], target["id"])].add(record["intervention_id"])
    return firings


def _targets_by_id(records: list[dict]) -> dict[str, set[tuple[str, str]]]:
    targets: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for record in records:
        target = record["target_attribute_key"]
        targets[record["intervention_id"]].add((target["name"], target["id"]))
    return targets


@pytest.mark.parametrize(
    "keep_local_state", [True, False], ids=["local-state-kept", "local-state-deleted"]
)
def test_sigkill_mid_stream_sends_each_firing_under_one_id(
    kafka_broker, tmp_path: Path, keep_local_state: bool
) -> None:
    definitions = _definitions(tmp_path / "definitions.yaml")
    lines = [
        ev.line
        for ev, _ in zip(
            generate_events(GeneratorConfig(users=USERS, seed=11)), range(EVENTS), strict=False
        )
    ]
    # The uninterrupted reference, one event at a time.
    sent, _ = _run(lines, definitions)
    expected = _by_firing(sent)
    assert all(len(ids) == 1 for ids in expected.values())
    assert any(len(targets) == 2 for targets in _targets_by_id(sent).values())
    # One input partition: each entity sees its events in the reference's order.
    app = stream_app(kafka_broker, "crash-rules", input_partitions=1)
    state_dir = tmp_path / "state"
    env = app.env(state_dir, SIGNALS_DEFINITIONS=str(definitions))  # default producer settings
    first = Worker(env, tmp_path / "worker-1.log")
    first.wait_healthy()
    producer = _produce_in_background(kafka_broker.bootstrap, app.input_topic, lines, rate=1000)
    # Killed mid-stream, once it has applied events and firings are being sent.
    applied = first.wait_applied(EVENTS // 2)
    first.kill()
    assert applied < 2 * EVENTS, "the worker had applied everything: not a mid-stream crash"
    if not keep_local_state:
        shutil.rmtree(state_dir)
    second = Worker(env, tmp_path / "worker-2.log")
    try:
        second.wait_healthy()
        producer.join(timeout=60)
        records = asyncio.run(
            _records(kafka_broker.bootstrap, app.out_topic, set(_targets_by_id(sent)), 120)
        )
    finally:
        second.stop()
    fired = _by_firing(records)
    twice = {firing: ids for firing, ids in fired.items() if len(ids) > 1}
    assert not twice, f"{len(twice)} firings sent under several ids: {list(twice.items())[:3]}"
    assert fired.keys() == expected.keys(), (
        f"missing {sorted(expected.keys() - fired.keys())[:5]}, "
        f"unexpected {sorted(fired.keys() - expected.keys())[:5]}\n{second.log_tail(20)}"
    )
    # The very ids of the uninterrupted run, each with all its targets.
    assert _targets_by_id(records) == _targets_by_id(sent)
