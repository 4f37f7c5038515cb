"""Faust's aiokafka transport, with two changes (glue).

* **The fetch long-poll is configurable.**
Faust hard-codes ``fetch_max_wait_ms=1500``. A broker that does not answer a long-poll as soon
as data arrives (the local Tansu broker, seen here) then adds up to 1.5 s per hop, and an event
crosses two hops (input, entity events) before it is visible. ``SIGNALS_CONSUMER_FETCH_MAX_WAIT_MS``
bounds that; on Apache Kafka the long-poll returns early anyway and the setting only changes how
often an idle consumer asks.
* **End offsets are verified.** Faust's changelog recovery asks the broker for each changelog
  partition's end and trusts the answer; a broker that reports it short (Tansu, see
  ``kafka/end_offsets.py``) makes a restarted worker stop at recovery with a ``ConsistencyError``
  ("persisted offset ... higher than the last offset in that topic") although nothing was lost.
  The consumer reads each partition's tail to find the true end first; a changelog that really
  lost records still fails that check.
* **A partition without a committed offset starts where ``auto_offset_reset`` says.** After
  recovery Faust seeks each stream partition to its committed offset, and aiokafka leaves a
  partition with none (or 0) where its fetcher stands. But the fetcher has been fetching during
  recovery, records Faust dropped while the streams were paused: a worker killed before its
  group's first commit came back reading the entity-events topic from its end, and the entity
  events forwarded before the kill were never applied. Such partitions are now sought
  explicitly (to the beginning, with the default ``earliest``; rows skip what they applied).
* **No commit passes a record that was not delivered.** Faust lets a commit pass a one-record
  hole right after the committed offset and makes undelivered offsets committable "gaps";
  both lost entity events around rebalances (``agents/entity_offsets.py``). ``forget`` drops
  a delivered message unacknowledged, for the entity stage's seek back.
* **The producer keeps every topic it sends to in its metadata.** aiokafka's producer adds a
  topic to the metadata it tracks only when the topic is not in the cluster metadata yet; a
  producer whose tracked list is still empty asks the broker for every topic, so the first
  topics it sends to are known without being tracked. The first send to a topic that does not
  exist yet (the interventions topic, at the first firing) tracks that topic alone, the next
  refresh drops the others, and batches for a dropped topic (entity events) have no leader:
  the sender then asks for metadata in a loop with no backoff, starving the event loop, and
  the first commit's flush waits until some send happens to re-add the topic (~26-30 s: the
  issue's intermittent slow mode, 4 of 5 benchmark runs). Each topic is now tracked before
  its first send (``track_topic``).
* **Whole record batches can be sent** (``create_batch`` / ``send_batch``): the entity rows'
  changelog goes out as one batch per partition per entity batch (``tables/row_store.py``).
* **A stopped worker leaves its group** on a broker that numbers generations from 0 (Tansu),
  where aiokafka would not send LeaveGroup (``kafka/group_exit.py``).
* **A stop can leave a note for the next start** (``before_stop``: called as the stop begins,
  what it returns is called once the producer is flushed; the worker's clean-stop manifest).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

import faust
from aiokafka import AIOKafkaClient, TopicPartition
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.structs import RecordMetadata
from faust.transport.drivers import aiokafka as driver
from faust.types import TP, Message, TransportT

from signals_stream.kafka.group_exit import GroupMember, member_left_behind

__all__ = ["EndOffsets", "LeaveGroup", "SignalsApp", "track_topic"]

logger = logging.getLogger(__name__)

# Partitions -> their true end offsets (``kafka.end_offsets.verified_end_offsets``).
EndOffsets = Callable[[list[TopicPartition]], Awaitable[Mapping[TopicPartition, int]]]
# Takes a stopped member out of its group (``kafka.group_exit.leave_group``).
LeaveGroup = Callable[[GroupMember], Awaitable[None]]


class _ConsumerThread(driver.AIOKafkaConsumerThread):
    async def seek_to_committed(self) -> Mapping[TP, int]:
        return await self.call_thread(self._seek_to_committed_exactly)

    async def _seek_to_committed_exactly(self) -> Mapping[TP, int]:
        consumer = self._ensure_consumer()
        committed: dict[TopicPartition, int | None] = await consumer.seek_to_committed()
        for tp, offset in committed.items():
            if offset == 0:
                consumer.seek(tp, 0)  # aiokafka seeks only to offsets > 0
        unset = [tp for tp, offset in committed.items() if offset is None or offset < 0]
        if unset:
            if self.app.conf.consumer_auto_offset_reset == "latest":
                await consumer.seek_to_end(*unset)
            else:
                await consumer.seek_to_beginning(*unset)
        return cast(Mapping[TP, int], committed)

    async def _highwaters(self, partitions: list[TP]) -> Mapping[TP, int]:
        reported = await super()._highwaters(partitions)
        verify = self.app.verify_end_offsets  # type: ignore[attr-defined]
        if verify is None:
            return reported
        verified = await verify([_tp(tp) for tp in partitions])
        # Never below the broker's answer; None (no offset known) stays None.
        return {
            tp: end if end is None else max(end, verified.get(_tp(tp), end))
            for tp, end in reported.items()
        }

    async def on_thread_stop(self) -> None:
        # Read before the consumer stops (stopping forgets it); see kafka/group_exit.py.
        member = member_left_behind(self._consumer)
        await super().on_thread_stop()
        leave = self.app.leave_group  # type: ignore[attr-defined]
        if member is not None and leave is not None:
            await leave(member)

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # Read by aiokafka when the consumer starts and builds its fetcher.
        wait_ms = self.app.fetch_max_wait_ms  # type: ignore[attr-defined]
        consumer._fetch_max_wait_ms = wait_ms  # noqa: SLF001 - no public knob in Faust
        return consumer


class _Consumer(driver.Consumer):
    def _new_consumer_thread(self) -> driver.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def committed_offset(self, tp: TP) -> int | None:
        """The partition's committed offset as this consumer knows it (the next to read)."""
        return self._committed_offset.get(tp)

    def forget(self, message: Message) -> None:
        """Drop a delivered message unacknowledged: no commit passes it until it is read
        again (``agents/entity_offsets.py`` seeks back to it). Faust's own ack of it later is a
        no-op, and a rebalance does not wait for it."""
        message.acked = True
        self._unacked_messages.discard(message)

    def _new_offset(self, tp: TP) -> int | None:
        # Faust compares the first acknowledged offset with the committed one (the next offset
        # to read) as if that were the last one read: a single record missing right after a
        # commit was committed over (seen: committed 158, record 158 never delivered, 159-209
        # acked, 210 committed). A hole at the head waits for the record.
        acked = self._acked[tp]
        committed = self._committed_offset[tp]
        if acked and committed is not None and min(acked) > committed:
            return None
        return super()._new_offset(tp)

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        # Faust registers offsets it never delivered as committable "gaps" (meant for
        # compacted or transactional topics). The topics this app's consumer streams are
        # neither: a gap there is records skipped, read again after a seek, never committed.
        logger.warning("%s: offsets %d-%d were not delivered", tp, offset_from, offset_to - 1)


def track_topic(client: AIOKafkaClient, topic: str) -> None:
    """Make ``client`` keep ``topic`` in the metadata it refreshes (see the module docstring).

    A set lookup when the topic is tracked already; otherwise one metadata refresh."""
    if topic not in client._topics:  # noqa: SLF001 - aiokafka has no public accessor
        client.add_topic(topic)


class _Producer(driver.Producer):
    async def send(self, topic: str, *args: Any, **kwargs: Any) -> Awaitable[RecordMetadata]:
        track_topic(self._ensure_producer().client, topic)
        return await super().send(topic, *args, **kwargs)

    def create_batch(self) -> BatchBuilder:
        """An empty record batch (aiokafka's, ``producer_max_batch_size`` bytes), filled by the
        caller and sent whole by :meth:`send_batch` (``kafka/batches.py``)."""
        return self._ensure_producer().create_batch()

    async def partition_of(self, topic: str, key: bytes) -> int:
        """The partition a keyed ``send`` would pick: Kafka's default partitioner over the
        topic's partitions (its metadata fetched first when not known yet)."""
        producer = self._ensure_producer()
        track_topic(producer.client, topic)
        await producer.client._wait_on_metadata(topic)  # noqa: SLF001 - as aiokafka's send
        return cast(int, producer._partition(topic, None, None, None, key, None))  # noqa: SLF001

    async def send_batch(
        self, batch: BatchBuilder, topic: str, partition: int
    ) -> asyncio.Future[RecordMetadata]:
        """Queue ``batch`` for ``topic``/``partition``, closed (nothing else joins it, so its
        last record's offset is the result's offset + ``record_count() - 1``). Flushed by
        Faust's producer flush like any send."""
        producer = self._ensure_producer()
        track_topic(producer.client, topic)
        batch.close()
        return cast(
            "asyncio.Future[RecordMetadata]",
            await producer.send_batch(batch, topic, partition=partition),
        )


class _Transport(driver.Transport):
    Consumer = _Consumer
    Producer = _Producer


def _tp(tp: TP) -> TopicPartition:
    return TopicPartition(tp.topic, tp.partition)


class SignalsApp(faust.App):
    """``faust.App`` whose consumer long-polls at most ``fetch_max_wait_ms``, checks the
    end offsets its recovery relies on with ``verify_end_offsets`` and, stopped, leaves its
    group with ``leave_group`` where aiokafka would not (when given)."""

    def __init__(
        self,
        *args: Any,
        fetch_max_wait_ms: int = 1500,
        verify_end_offsets: EndOffsets | None = None,
        leave_group: LeaveGroup | None = None,
        **kwargs: Any,
    ) -> None:
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.verify_end_offsets = verify_end_offsets
        self.leave_group = leave_group
        self.before_stop: Callable[[], Callable[[], None]] | None = None
        super().__init__(*args, **kwargs)

    async def on_stop(self) -> None:
        after_flush = None if self.before_stop is None else self.before_stop()
        await super().on_stop()  # stops the consumer and tables, then flushes the producer
        if after_flush is not None:
            await asyncio.sleep(0.01)  # the flushed sends' acknowledgement callbacks run first
            after_flush()

    def _new_transport(self) -> TransportT:
        return _Transport(self.conf.broker_consumer, self)
