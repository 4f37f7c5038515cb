"""Every worker tails the push receipts topic from its end: a receipt names a direct push that
reached a subscriber on some worker, and resolves the push waiting for it here, if any
(``delivery.pusher``)."""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from signals_stream.kafka.auth import client_auth
from signals_stream.kafka.topics import tail_consumer
from signals_stream.worker_state import WorkerState

__all__ = ["register_push_receipts"]

logger = logging.getLogger(__name__)


def register_push_receipts(state: WorkerState) -> None:
    settings, receipts = state.settings, state.pusher.receipts
    topic = state.topics.receipts
    name = state.topics.receipts_name
    auth = client_auth(settings)

    async def tail_receipts() -> None:
        try:
            await topic.maybe_declare()
        except KafkaError as exc:
            # Without the topic, pushes answer 'undelivered' unless the broker auto-creates it.
            logger.warning("cannot create %s: %s", name, exc)
        while True:
            consumer = tail_consumer(
                settings.bootstrap_servers,
                name,
                fetch_max_wait_ms=settings.consumer_fetch_max_wait_ms,
                auth=auth,
            )
            try:
                await consumer.start()
                await _positioned(consumer)
                receipts.listening.set()
                async for message in consumer:
                    receipts.deliver(message.value.decode(errors="replace"))
            except KafkaError as exc:
                logger.warning("intervention receipts tail: %s; retrying in 1 s", exc)
                await asyncio.sleep(1.0)
            finally:
                receipts.listening.clear()
                await consumer.stop()

    state.app.task(tail_receipts)


async def _positioned(consumer: AIOKafkaConsumer) -> None:
    """Wait until the consumer's position on every partition is resolved ("latest" is looked
    up lazily): a receipt written after this point is read."""
    while not consumer.assignment():
        await asyncio.sleep(0.05)
    for tp in consumer.assignment():
        await consumer.position(tp)
