"""Direct pushes across workers: send a push to the interventions topic, then wait for a
delivery receipt from whichever worker's SSE subscriber got it.

The subscriber may be connected to any worker, so the pushing worker cannot see it. Each
worker's interventions tail hands pushed records to its local subscribers and, when at least
one got it, calls :func:`acknowledge`: a push of this very worker is resolved in memory, any
other produces a receipt (the intervention id) to the receipts topic, which every worker tails
from its end. No receipt within ``SIGNALS_PUSH_RECEIPT_TIMEOUT_MS`` means "undelivered".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from signals_stream.app import RECEIPTS_TOPIC, app, receipts_topic, settings
from signals_stream.delivery.push import PUSH_HEADER, DeliveryReceipts
from signals_stream.kafka.auth import client_auth
from signals_stream.kafka.topics import tail_consumer

__all__ = ["acknowledge", "is_push", "push", "receipts", "tail_receipts"]

logger = logging.getLogger(__name__)
receipts = DeliveryReceipts()
_PUSH_HEADERS = [(PUSH_HEADER, b"1")]
_auth = client_auth(settings)


async def push(instances: list[dict[str, Any]]) -> bool:
    """Send one direct push (its instances share one intervention id, one per target) and wait
    for a receipt.

    Returns:
        True when a live subscriber on some worker received it within the timeout.

    Raises:
        faust.exceptions.ProducerSendError, KafkaError: the interventions topic cannot be
            written.
    """
    timeout_s = settings.push_receipt_timeout_ms / 1000
    with contextlib.suppress(TimeoutError):  # only right after start-up
        await asyncio.wait_for(receipts.listening.wait(), timeout_s)
    with receipts.expecting(instances[0]["intervention_id"]) as received:
        acks = [
            await app.producer.send(
                settings.interventions_topic,
                instance["target_attribute_key"]["id"].encode(),
                orjson.dumps(instance),
                None,
                None,
                _PUSH_HEADERS,
            )
            for instance in instances
        ]
        await asyncio.gather(*acks)
        try:
            await asyncio.wait_for(received, timeout_s)
        except TimeoutError:
            return False
    return True


async def acknowledge(intervention_id: str) -> None:
    """A local subscriber got the pushed ``intervention_id``: tell the worker that pushed it."""
    if not receipts.deliver(intervention_id):
        key = intervention_id.encode()
        await app.producer.send(RECEIPTS_TOPIC, key, key, None, None, None)


def is_push(headers: Any) -> bool:
    """Whether a record of the interventions topic is a direct push (by its headers)."""
    return any(name == PUSH_HEADER for name, _ in headers or ())


@app.task
async def tail_receipts() -> None:
    try:
        await receipts_topic.maybe_declare()
    except KafkaError as exc:
        # Without the topic, pushes answer 'undelivered' unless the broker auto-creates it.
        logger.warning("cannot create %s: %s", RECEIPTS_TOPIC, exc)
    while True:
        consumer = tail_consumer(
            settings.bootstrap_servers,
            RECEIPTS_TOPIC,
            fetch_max_wait_ms=settings.consumer_fetch_max_wait_ms,
            auth=_auth,
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


async def _positioned(consumer: AIOKafkaConsumer) -> None:
    """Wait until the consumer's position on every partition is resolved ("latest" is looked
    up lazily): a receipt written after this point is read."""
    while not consumer.assignment():
        await asyncio.sleep(0.05)
    for tp in consumer.assignment():
        await consumer.position(tp)
