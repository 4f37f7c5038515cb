"""Lean ingest (``SIGNALS_INGEST_MODE=lean``, the default): the input topic read by a plain
aiokafka consumer instead of a Faust agent.

Per input record, Faust's agent machinery (the consumer thread's drain, the conductor, stream
iteration, an event and its ack per message) cost more CPU than parsing and routing the record
(profile in docs/next-steps.md #3). The ingest stage needs none of it: it owns no table, so it
needs no co-partitioning. Here a consumer of its own group (``<app_id>-ingest``) takes whatever
the fetcher holds (up to ``SIGNALS_BROKER_MAX_POLL_RECORDS`` records) as raw bytes, parses and
routes it like the Faust agent, and sends the entity-events records and dead letters through
the app's producer. A batch's offsets are committed only once the broker acknowledged every
record it produced (at least once); entity rows skip what they already applied (per-row input
offsets), so the effect stays exactly once.

Acknowledgements are awaited off the loop's critical path: the next batch is parsed while the
previous ones' records are in flight (at most ``_MAX_IN_FLIGHT`` batches), and their commits
run in order. A rebalance or shutdown first lets the batch in hand and every commit finish.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, ConsumerStoppedError, IllegalStateError, KafkaError
from aiokafka.structs import ConsumerRecord, RecordMetadata
from mode import Service

from agents.dead_letter_sender import DeadLetterSender
from agents.forward import Forwarder
from agents.ingest_step import DeadLetter, IngestBatch
from agents.lean_offsets import start_where_faust_left
from agents.loop_turns import LoopTurns
from signals_stream.kafka.auth import client_auth
from signals_stream.kafka.group_exit import abandon_pending_join, leave_group, member_left_behind
from signals_stream.settings import Settings
from signals_stream.worker_state import WorkerState

__all__ = ["INGEST_GROUP_SUFFIX", "LeanIngest", "register_lean_ingest"]

logger = logging.getLogger(__name__)

INGEST_GROUP_SUFFIX = "ingest"
_POLL_TIMEOUT_MS = 1000  # only how often an idle loop checks for shutdown; data returns at once
_MAX_IN_FLIGHT = 4  # batches sent but not yet committed (bounds memory and the replay)


class LeanIngest(Service):
    """The input topic's consumer: poll, parse, route, send; commit once acknowledged."""

    def __init__(self, state: WorkerState, dead_letters: DeadLetterSender) -> None:
        super().__init__()
        self._state = state
        self._forward = Forwarder(state)
        self._dead_letters = dead_letters
        dead_letters.on_cleared = self._commit_after_retry
        # Per partition: the next offset whose records are all sent (acknowledged or, for
        # dead letters, kept for a retry), and the last offset committed.
        self._done: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._paused = False
        self._consumer: AIOKafkaConsumer | None = None  # built in the running loop
        self._joining: asyncio.Future[None] | None = None  # the consumer's start: its join
        # Held while a batch is parsed and sent: rebalances and shutdown wait for it.
        self._batch = asyncio.Lock()
        # One task per sent batch: its acknowledgements, then its commit, in batch order.
        self._commits: deque[asyncio.Task[None]] = deque()

    @property
    def consumer(self) -> AIOKafkaConsumer:
        assert self._consumer is not None, "the lean ingest consumer is not started"
        return self._consumer

    def begin_join(self) -> None:
        """Create the consumer and start its group join in the background.

        Called when the app starts (``_JoinEarly``), not when this service starts: Faust starts
        user services only after table recovery, so the ingest group's join would wait for the
        Faust group's join first, and on the embedded broker each first join takes about half
        the session timeout (start to first event was the sum of both)."""
        if self._consumer is not None:
            return
        settings = self._state.settings
        self._consumer = _new_consumer(settings)
        self._consumer.subscribe([settings.input_topic], listener=_Listener(self))
        self._joining = asyncio.ensure_future(self._consumer.start())
        self._state.input_lag = self.lag

    async def _joined(self) -> AIOKafkaConsumer:
        """The consumer, once it has joined its group (begun here if the app did not)."""
        self.begin_join()
        assert self._joining is not None
        await asyncio.shield(self._joining)
        return self.consumer

    async def on_start(self) -> None:
        settings = self._state.settings
        self.begin_join()
        group = _group_id(settings)
        logger.info("lean ingest: reading %s as group %s", settings.input_topic, group)
        if settings.input_keyed_by:
            # Its own group is not co-partitioned with the table: every key crosses the hop.
            logger.warning(
                "SIGNALS_INPUT_KEYED_BY=%s only skips the re-keying hop with "
                "SIGNALS_INGEST_MODE=faust",
                settings.input_keyed_by,
            )

    async def on_stop(self) -> None:
        if self._consumer is None:
            return
        async with self._batch:  # the batch in hand is sent; then every commit is done
            try:
                await self._settle(0)
            finally:
                await self.close_consumer()

    async def close_consumer(self) -> None:
        """Stop the consumer promptly and leave the group (``kafka/group_exit.py``)."""
        consumer, joining = self._consumer, self._joining
        if consumer is None:
            return
        if joining is not None:
            await abandon_pending_join(consumer, joining)
        member = member_left_behind(consumer)
        await consumer.stop()
        if member is not None:
            settings = self._state.settings
            await leave_group(settings.bootstrap_servers, member, client_auth(settings))

    async def on_revoked(self, revoked: set[TopicPartition]) -> None:
        """Before partitions move: finish the batch in hand and commit everything sent (up to
        the first pending dead letter: the new owner re-reads from there)."""
        async with self._batch:
            await self._settle(0)
        self._dead_letters.drop((tp.topic, tp.partition) for tp in revoked)
        for tp in revoked:
            self._done.pop(tp, None)
            self._committed.pop(tp, None)

    async def on_assigned(self, assigned: set[TopicPartition]) -> None:
        """New partitions: those this group never committed start where the Faust agent's
        group left them (switching modes does not re-read the topic)."""
        consumer = self.consumer
        # Paused before the first await, so nothing is fetched from a position about to move.
        consumer.pause(*assigned)
        try:
            await start_where_faust_left(consumer, assigned, self._state.settings)
        finally:
            consumer.resume(*assigned)

    @Service.task
    async def _consume(self) -> None:
        max_records = self._state.settings.broker_max_poll_records
        await self._state.registry_log.ready.wait()  # the whole catalog, from the first event
        consumer = await self._joined()
        while not self.should_stop:
            self._pause_while_dead_letters_wait()
            try:
                batches = await consumer.getmany(
                    timeout_ms=_POLL_TIMEOUT_MS, max_records=max_records
                )
            except ConsumerStoppedError:
                return
            if not batches:
                continue
            async with self._batch:
                if self.should_stop:
                    return  # not processed, not committed: read again after the restart
                acks, dead, offsets = await self._send(batches)
                self._chain_commit(acks, dead, offsets)
            await self._settle(_MAX_IN_FLIGHT)

    def _pause_while_dead_letters_wait(self) -> None:
        """Pause the input while the dead-letter sender keeps as many letters as it may;
        polling goes on (an idle poll keeps the group membership)."""
        consumer = self.consumer
        full = self._dead_letters.full
        if full:
            if not self._paused:
                logger.error("lean ingest: input paused, too many dead letters wait for a retry")
            consumer.pause(*consumer.assignment())  # again after a rebalance resumed them
        elif self._paused and not full:
            logger.warning("lean ingest: input resumed")
            consumer.resume(*consumer.assignment())
        self._paused = full

    async def _send(
        self, batches: dict[TopicPartition, list[ConsumerRecord]]
    ) -> tuple[list[Awaitable[RecordMetadata]], list[DeadLetter], dict[TopicPartition, int]]:
        """Parse, route and send one poll's records; return the acks, the dead letters (sent
        when the batch commits, off the critical path) and the next offsets."""
        state = self._state
        owned = self.consumer.assignment()
        now_ms = int(time.time() * 1000)
        batch = IngestBatch(
            state.live.plan,
            state.settings.partitions,
            state.stats,
            state.settings.dead_letter_max_bytes,
            now_ms,
        )
        add = batch.add
        turns = LoopTurns()
        offsets: dict[TopicPartition, int] = {}
        state.stats.input_batches += 1
        for tp, records in batches.items():
            if tp not in owned:
                continue  # revoked since the fetch: its new owner reads it
            topic, partition = tp.topic, tp.partition
            for record in records:
                await turns.give()  # a poll holds up to 2,000 records: reads get turns
                add(record.value, topic=topic, partition=partition, offset=record.offset,
                    key=record.key)  # fmt: skip
            offsets[tp] = records[-1].offset + 1
        acks = await self._forward.send_entity_events(
            batch.by_partition, backfills=batch.plan.backfills
        )
        state.event_to_processed.observe_ages(batch.event_times, now_ms)
        return acks, batch.dead, offsets

    def _chain_commit(
        self,
        acks: list[Awaitable[RecordMetadata]],
        dead: list[DeadLetter],
        offsets: dict[TopicPartition, int],
    ) -> None:
        previous = self._commits[-1] if self._commits else None
        self._commits.append(asyncio.create_task(self._commit(previous, acks, dead, offsets)))

    def _commit_after_retry(self) -> None:
        """Dead letters held back a commit and are now written: commit what is done."""
        if self._consumer is not None and not self.should_stop:
            self._chain_commit([], [], {})

    async def _commit(
        self,
        previous: asyncio.Task[None] | None,
        acks: list[Awaitable[RecordMetadata]],
        dead: list[DeadLetter],
        offsets: dict[TopicPartition, int],
    ) -> None:
        if previous is not None:
            await previous  # commits stay in batch order
        # A failed entity-events send raises here, before the commit, and crashes the worker:
        # at least once. Dead letters never raise: a refused one is kept and retried.
        await asyncio.gather(*acks)
        await self._dead_letters.deliver(dead)
        owned = self.consumer.assignment()
        self._done.update((tp, offset) for tp, offset in offsets.items() if tp in owned)
        hold = self._dead_letters.hold()
        commit: dict[TopicPartition, int] = {}
        for tp, offset in self._done.items():
            held = hold.get((tp.topic, tp.partition))
            if held is not None and held < offset:
                offset = held  # the first record whose dead letter is not written yet
            if self._committed.get(tp) != offset:
                commit[tp] = offset
        if not commit:
            return
        try:
            await self.consumer.commit(commit)
        except (CommitFailedError, IllegalStateError) as exc:
            # The group rebalanced meanwhile; the new owner re-reads, rows skip the replays.
            logger.warning("lean ingest: commit skipped: %s", exc)
            return
        self._committed.update(commit)

    async def _settle(self, limit: int) -> None:
        """Wait until at most ``limit`` batches are uncommitted; raise a failed send."""
        commits = self._commits
        while commits and (len(commits) > limit or commits[0].done()):
            first = commits[0]
            await first  # left in place meanwhile, so a concurrent rebalance waits for it too
            if commits and commits[0] is first:
                commits.popleft()

    async def lag(self) -> dict[tuple[str, int], int]:
        """``highwater - position`` of every input partition this worker reads."""
        consumer = self._consumer
        if consumer is None:
            return {}
        found: dict[tuple[str, int], int] = {}
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            try:
                position = await asyncio.wait_for(consumer.position(tp), 1.0)
            except (TimeoutError, KafkaError, IllegalStateError):
                continue
            if highwater is not None and position is not None:
                found[(tp.topic, tp.partition)] = max(0, highwater - position)
        return found


class _Listener(ConsumerRebalanceListener):
    def __init__(self, ingest: LeanIngest) -> None:
        self._ingest = ingest

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._ingest.on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._ingest.on_assigned(assigned)


def _group_id(settings: Settings) -> str:
    return f"{settings.app_id}-{INGEST_GROUP_SUFFIX}"


def _new_consumer(settings: Settings) -> AIOKafkaConsumer:
    session_s = settings.broker_session_timeout_s
    group = _group_id(settings)
    return AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=group,
        client_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",  # Faust's default, as the agent had
        max_partition_fetch_bytes=settings.consumer_max_fetch_size,
        fetch_max_wait_ms=settings.consumer_fetch_max_wait_ms,
        max_poll_records=settings.broker_max_poll_records,
        session_timeout_ms=int(session_s * 1000),
        rebalance_timeout_ms=int(settings.broker_rebalance_timeout_s * 1000),
        heartbeat_interval_ms=int(min(3.0, session_s / 3) * 1000),
        **client_auth(settings),
    )


class _JoinEarly(Service):
    """Starts the lean consumer's group join with the app (see ``LeanIngest.begin_join``),
    and stops the consumer if the app stops before the ingest service ever started."""

    def __init__(self, ingest: LeanIngest) -> None:
        super().__init__()
        self._ingest = ingest

    async def on_start(self) -> None:
        self._ingest.begin_join()

    async def on_stop(self) -> None:
        await self._ingest.close_consumer()  # a no-op once the ingest service stopped it


def register_lean_ingest(state: WorkerState, dead_letters: DeadLetterSender) -> LeanIngest:
    """The lean consumer: its group join starts with the app, its processing once the app
    is started (tables recovered), and it stops before the producer it sends through."""
    service = LeanIngest(state, dead_letters)
    # A child added before the app starts starts before Faust's own consumer and producer
    # (and stops after them: it only closes the consumer then).
    state.app.add_dependency(_JoinEarly(service))
    # Faust starts the services it is given with the app, instances as well as classes.
    state.app.service(service)  # type: ignore[arg-type]
    return service
