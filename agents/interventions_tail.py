"""Every worker tails the whole interventions topic (no consumer group: each worker needs every
record) and hands each instance to its local SSE subscribers, so a subscriber on any worker
receives interventions computed (or pushed) on any worker. A direct push that reached a local
subscriber is acknowledged to the pushing worker (``delivery.pusher``).

The tail starts ``SIGNALS_SSE_RESUME_LOOKBACK_S`` back: those records fill the hub's recent
buffer (for streams that reconnect with ``Last-Event-ID``) and reach no live stream; from the
topic's end as of the start on, records are live. After a broker error the tail resumes where
it stood instead of at the end, so live streams miss nothing either.
"""

from __future__ import annotations

import asyncio
import logging
import time

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from signals_stream.delivery.hub import Hub
from signals_stream.delivery.pusher import Pusher, is_push
from signals_stream.delivery.recent import Recorded
from signals_stream.kafka.auth import client_auth
from signals_stream.kafka.end_offsets import offsets_from_time, verified_end_offsets
from signals_stream.kafka.topics import topic_partitions
from signals_stream.worker_state import WorkerState

__all__ = ["register_interventions_tail"]

logger = logging.getLogger(__name__)


def register_interventions_tail(state: WorkerState) -> None:
    settings, hub, pusher = state.settings, state.hub, state.pusher
    auth = client_auth(settings)
    topic = settings.interventions_topic

    async def position(consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> None:
        if hub.ready.is_set() or hub.positions:  # a restart of the tail: go on from there
            for tp in tps:
                consumer.seek(tp, hub.positions.get(tp.partition, 0))
            return
        ends = await verified_end_offsets(settings.bootstrap_servers, tps, auth=auth)
        lookback_ms = settings.sse_resume_lookback_s * 1000
        starts = await offsets_from_time(
            consumer,
            ends,
            int(time.time() * 1000) - lookback_ms,
            at_most=settings.sse_resume_max_entries if lookback_ms else 0,
        )
        for tp, start in starts.items():
            consumer.seek(tp, start)
        hub.begin(
            len(tps),
            {tp.partition: start for tp, start in starts.items()},
            {tp.partition: end for tp, end in ends.items()},
        )

    async def tail_interventions() -> None:
        while True:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=settings.bootstrap_servers,
                group_id=None,
                enable_auto_commit=False,
                fetch_max_wait_ms=settings.consumer_fetch_max_wait_ms,
                **auth,
            )
            try:
                partitions = await topic_partitions(settings.bootstrap_servers, topic, auth=auth)
                if not partitions:  # the worker creates it at start; wait for that
                    await asyncio.sleep(0.5)
                    continue
                await consumer.start()
                tps = [TopicPartition(topic, p) for p in range(partitions)]
                consumer.assign(tps)
                await position(consumer, tps)
                async for message in consumer:
                    await _hand_over(hub, pusher, message)
            except KafkaError as exc:
                logger.warning("interventions tail: %s; retrying in 1 s", exc)
                await asyncio.sleep(1.0)
            finally:
                await consumer.stop()

    state.app.task(tail_interventions)


async def _hand_over(hub: Hub, pusher: Pusher, message: ConsumerRecord[bytes, bytes]) -> None:
    value = message.value or b""
    try:
        instance = orjson.loads(value)
        key = instance["target_attribute_key"]
        target = (str(key["name"]), str(key["id"]))
    except (orjson.JSONDecodeError, TypeError, KeyError):
        logger.warning("unreadable intervention at offset %d", message.offset)
        hub.skip(message.partition, message.offset)
        return
    record = Recorded(message.partition, message.offset, message.timestamp, value)
    delivered = hub.publish(target, record, int(time.time() * 1000))
    if delivered and is_push(message.headers):
        await pusher.acknowledge(str(instance.get("intervention_id")))
