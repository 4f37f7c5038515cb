"""Leaving a consumer group promptly on the embedded broker (``kafka/group_exit.py``)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from signals_stream.devtools.broker import LocalBroker
from signals_stream.kafka.group_exit import abandon_pending_join, leave_group, member_left_behind

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SESSION_MS = 20_000  # on Tansu a first join completes after about half of it


async def _members(bootstrap: str, group: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_consumer_groups([group])
        ((_, _, _, _, _, members, *_),) = described.groups
        return [member[0] for member in members]
    finally:
        await admin.close()


def _consumer(bootstrap: str, topic: str, group: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        session_timeout_ms=SESSION_MS,
        heartbeat_interval_ms=3000,
        enable_auto_commit=False,
    )


def test_a_stopped_member_leaves_its_group_at_once(
    kafka_broker: LocalBroker, make_topic: Callable[..., str]
) -> None:
    topic = make_topic(partitions=2)
    group = f"exit-{uuid.uuid4().hex[:8]}"

    async def run() -> tuple[list[str], list[str]]:
        consumer = _consumer(kafka_broker.bootstrap, topic, group)
        await consumer.start()  # joined
        before = await _members(kafka_broker.bootstrap, group)
        member = member_left_behind(consumer)
        await consumer.stop()
        if member is not None:  # the broker numbered the generation 0: aiokafka did not leave
            await leave_group([kafka_broker.bootstrap], member)
        return before, await _members(kafka_broker.bootstrap, group)

    before, after = asyncio.run(run())
    assert len(before) == 1
    assert after == [], f"still a member {after} (it would hold its partitions a session long)"


def test_stopping_during_the_first_join_does_not_wait_for_it(
    kafka_broker: LocalBroker, make_topic: Callable[..., str]
) -> None:
    topic = make_topic(partitions=2)
    group = f"exit-{uuid.uuid4().hex[:8]}"

    async def run() -> tuple[float, float]:
        # The time a first join takes here, for comparison.
        joined = _consumer(kafka_broker.bootstrap, topic, f"{group}-ref")
        started = time.monotonic()
        await joined.start()
        join_s = time.monotonic() - started
        await joined.stop()

        consumer = _consumer(kafka_broker.bootstrap, topic, group)
        joining: asyncio.Future[None] = asyncio.ensure_future(consumer.start())
        await asyncio.sleep(0.5)
        assert not joining.done(), "the join completed at once: nothing to abandon"
        started = time.monotonic()
        await abandon_pending_join(consumer, joining)
        await consumer.stop()
        return join_s, time.monotonic() - started

    join_s, stop_s = asyncio.run(run())
    assert join_s > 2.0, f"a first join took {join_s:.1f} s: the broker has no join delay"
    assert stop_s < join_s / 2, f"stop took {stop_s:.1f} s, a join {join_s:.1f} s"
