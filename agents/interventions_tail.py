"""Every worker tails the whole interventions topic (no consumer group: each worker needs every
record) and hands each instance to its local SSE subscribers, so a subscriber on any worker
receives interventions computed (or pushed) on any worker. A direct push that reached a local
subscriber is acknowledged to the pushing worker (``delivery.pusher``)."""

from __future__ import annotations

import asyncio
import logging

import orjson
from aiokafka.errors import KafkaError

from signals_stream.delivery.pusher import is_push
from signals_stream.kafka.auth import client_auth
from signals_stream.kafka.topics import tail_consumer
from signals_stream.worker_state import WorkerState

__all__ = ["register_interventions_tail"]

logger = logging.getLogger(__name__)


def register_interventions_tail(state: WorkerState) -> None:
    settings, hub, pusher = state.settings, state.hub, state.pusher
    auth = client_auth(settings)

    async def tail_interventions() -> None:
        while True:
            # From the end: subscribers want what happens from now on.
            consumer = tail_consumer(
                settings.bootstrap_servers,
                settings.interventions_topic,
                fetch_max_wait_ms=settings.consumer_fetch_max_wait_ms,
                auth=auth,
            )
            try:
                await consumer.start()
                async for message in consumer:
                    try:
                        instance = orjson.loads(message.value)
                        delivered = hub.publish(instance)
                    except (orjson.JSONDecodeError, TypeError, AttributeError):
                        logger.warning("unreadable intervention at offset %d", message.offset)
                        continue
                    if delivered and is_push(message.headers):
                        await pusher.acknowledge(str(instance.get("intervention_id")))
            except KafkaError as exc:
                logger.warning("interventions tail: %s; retrying in 1 s", exc)
                await asyncio.sleep(1.0)
            finally:
                await consumer.stop()

    state.app.task(tail_interventions)
