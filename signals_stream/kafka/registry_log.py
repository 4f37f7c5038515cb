"""The registry log: a compacted topic every worker and ``signals-stream api`` read whole.

``<app_id>-registry-changelog`` (one partition, compacted) holds one record per definition
(``<kind>/<name>/<version>`` -> entry JSON; a tombstone deletes). Each process reads it with a
plain consumer from the beginning, for its whole life, folds every record into its
:class:`~signals_stream.registry.Registry` and installs the recompiled catalog once per fetched
batch. :attr:`RegistryLog.ready` is set once the log is read to its end as of the start (the
end verified by reading the tail, since the embedded broker reports it short): a worker serves
nothing and processes no event before, so its catalog is complete from the first event.

Workers create the topic at start (so no first write, and no broker's auto-creation, picks its
shape), append API writes to it and answer once they have read their own records back.
``signals-stream api`` only reads; it waits for a worker to create the topic.

A plain tail rather than a Faust ``GlobalTable``: Faust reads a global table's changelog as a
standby of its consumer group, which starts only after the group's first rebalance and stops
while one runs, so a worker could answer healthy and still not see a write for many seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import RecordMetadata

from signals_stream.engine import Catalog
from signals_stream.engine.installed import LiveCatalog
from signals_stream.errors import DefinitionError, RegistryUnavailable
from signals_stream.kafka.auth import client_auth
from signals_stream.kafka.end_offsets import verified_end_offsets
from signals_stream.kafka.topics import TopicSpec, ensure_topics, topic_partitions
from signals_stream.registry import Change, Registry
from signals_stream.registry.loader import initial_registry
from signals_stream.settings import Settings

__all__ = ["RegistryLog", "registry_topic"]

logger = logging.getLogger(__name__)

_RETRY_S = 2.0
# Longest a write waits for the log to be read at start-up, and then to read its own records.
WRITE_VISIBLE_TIMEOUT_S = 10.0


def registry_topic(app_id: str) -> str:
    """The registry log's topic (the name Faust gave the changelog of the former table)."""
    return f"{app_id}-registry-changelog"


class Producer(Protocol):
    """What writes need of a producer (Faust's ``app.producer``)."""

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None,
        timestamp: float | None,
        headers: Any,
    ) -> Awaitable[Awaitable[RecordMetadata]]: ...


class RegistryLog:
    """Folds the registry log into :attr:`registry`; :attr:`live` holds its compilation."""

    def __init__(self, settings: Settings, registry: Registry, live: LiveCatalog) -> None:
        self.settings = settings
        self.topic = registry_topic(settings.app_id)
        self.registry = registry
        self.live = live
        self.ready = asyncio.Event()
        self.offset = -1  # the last offset folded in
        self.records = 0
        self._read = asyncio.Condition()
        # One API write at a time per worker: a command validates against the registry as of
        # its own previous writes.
        self._write_lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> RegistryLog:
        """Built-in keys and the definitions file, before the log is read.

        Raises:
            DefinitionError: the definitions file is invalid.
        """
        registry = initial_registry(settings)
        return cls(settings, registry, LiveCatalog(registry.catalog()))

    @property
    def catalog(self) -> Catalog:
        return self.live.catalog

    async def run(self, *, create: bool) -> None:
        """Tail the log forever, reconnecting after broker failures; ``create``: make the
        topic if it does not exist (workers), else wait for it."""
        while True:
            try:
                await self._prepare(create)
                await self._follow()
            except KafkaError as exc:
                logger.error("registry log %s: %s; retrying", self.topic, exc)
                await asyncio.sleep(_RETRY_S)

    async def _prepare(self, create: bool) -> None:
        auth = client_auth(self.settings)
        bootstrap = self.settings.bootstrap_servers
        if create:
            spec = TopicSpec(
                self.topic,
                1,
                compacted=True,
                replication_factor=self.settings.topic_replication_factor,
            )
            await ensure_topics(bootstrap, [spec], auth=auth)
            return
        # Named in a metadata request, a missing topic would be auto-created by brokers that
        # allow it, with the wrong partition count and no compaction: wait for the workers.
        waiting_logged = False
        while await topic_partitions(bootstrap, self.topic, auth=auth) is None:
            if not waiting_logged:
                logger.warning(
                    "registry log %s does not exist yet; waiting for a worker", self.topic
                )
                waiting_logged = True
            await asyncio.sleep(_RETRY_S)

    async def _follow(self) -> None:
        settings = self.settings
        auth = client_auth(settings)
        tp = TopicPartition(self.topic, 0)
        end = (await verified_end_offsets(settings.bootstrap_servers, [tp], auth=auth))[tp]
        consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=settings.consumer_fetch_max_wait_ms,
            **auth,
        )
        await consumer.start()
        try:
            consumer.assign([tp])
            consumer.seek(tp, max(self.offset + 1, 0))  # after a reconnect, where it stopped
            if self.offset + 1 >= end:
                self._mark_ready()
            while True:
                batches = await consumer.getmany(tp, timeout_ms=1000)
                messages = batches.get(tp, [])
                for message in messages:
                    self._apply(message.key, message.value, message.offset)
                if messages:
                    self._install()
                    async with self._read:
                        self._read.notify_all()
                if not self.ready.is_set() and self.offset + 1 >= end:
                    self._mark_ready()
        finally:
            await consumer.stop()

    def _mark_ready(self) -> None:
        self.ready.set()
        logger.info(
            "registry log read (%d records): %d groups published",
            self.records,
            len(self.live.catalog.groups),
        )

    def _apply(self, key: bytes | None, value: bytes | None, offset: int) -> None:
        self.records += 1
        self.offset = max(self.offset, offset)
        if key is None:
            return
        try:
            self.registry.apply(key, value)
        except DefinitionError as exc:
            logger.error("registry record at offset %s skipped: %s", offset, exc)

    def _install(self) -> None:
        try:
            self.live.install(self.registry.catalog())
        except DefinitionError as exc:  # validated on write; only an older writer could do it
            logger.error("registry definitions cannot run together, keeping the last: %s", exc)

    async def wait_for(self, offset: int, timeout_s: float) -> None:
        """Wait until the record at ``offset`` is folded in (and its catalog installed).

        Raises:
            RegistryUnavailable: not within ``timeout_s``.
        """
        try:
            async with asyncio.timeout(timeout_s), self._read:
                await self._read.wait_for(lambda: self.offset >= offset)
        except TimeoutError:
            raise RegistryUnavailable(
                "the registry write was accepted by Kafka but this worker has not read it "
                "back yet; retry the read"
            ) from None

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[None]:
        """Hold this process's write lock, once the log is read: a command validates against
        the whole registry, as of this process's own previous writes.

        Raises:
            RegistryUnavailable: the log is not read within the write timeout.
        """
        try:
            await asyncio.wait_for(self.ready.wait(), WRITE_VISIBLE_TIMEOUT_S)
        except TimeoutError:
            raise RegistryUnavailable("the registry log is not read yet; retry shortly") from None
        async with self._write_lock:
            yield

    async def write(self, changes: Sequence[Change], producer: Producer) -> None:
        """Append ``changes`` and wait until this process has folded them in, so the API
        answers with its own writes visible (and the catalog installed). Call it inside
        :meth:`writing`.

        Raises:
            RegistryUnavailable: the log could not be written or read back in time.
        """
        last = -1
        try:
            for change in changes:
                sent = await producer.send(self.topic, change.key, change.value(), 0, None, None)
                last = max(last, (await sent).offset)
        except Exception as exc:  # Kafka errors of every kind: the client gets a 503, not a 500
            raise RegistryUnavailable(f"cannot write the registry log: {exc}") from exc
        if last >= 0:
            await self.wait_for(last, WRITE_VISIBLE_TIMEOUT_S)
