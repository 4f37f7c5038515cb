"""The app's producer keeps every topic it sends to in its metadata (``kafka/transport.py``).

The slow mode of #13: the producer sent to a topic it knew from its first (all-topics)
metadata without tracking it; its first send to a topic created later tracked that topic
alone, the next refresh dropped the first, and its batches waited without a leader.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable

import pytest
from faust.types import ProducerT

from signals_stream.devtools.broker import LocalBroker
from signals_stream.kafka.transport import SignalsApp

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def test_a_topic_sent_to_stays_known_after_a_send_to_a_newer_topic(
    kafka_broker: LocalBroker, make_topic: Callable[..., str]
) -> None:
    first = make_topic(partitions=2, prefix="first")
    app = SignalsApp(f"producer-topics-{uuid.uuid4().hex[:6]}", broker=kafka_broker.url)

    async def run() -> tuple[set[str], float]:
        producer: ProducerT = app.producer
        await producer.start()
        try:
            # Known from the producer's first metadata (every topic): no lookup before the send.
            await (await producer.send(first, b"k", b"1", 1, None, None))
            later = make_topic(partitions=1, prefix="later")  # unknown to the producer so far
            await (await producer.send(later, b"k", b"2", 0, None, None))
            client = producer._ensure_producer().client  # type: ignore[attr-defined]
            await client.force_metadata_update()  # a refresh of what the producer tracks
            known = set(client.cluster.topics())
            started = time.monotonic()
            await asyncio.wait_for(
                await producer.send(first, b"k", b"3", 1, None, None), timeout=30
            )
            return known, time.monotonic() - started
        finally:
            await producer.stop()

    known, first_ack_s = asyncio.run(run())
    assert first in known  # the bug: only the later topic was left
    assert first_ack_s < 5.0  # its batch had a leader: acknowledged, not parked for ~26 s
