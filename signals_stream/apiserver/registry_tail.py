"""The registry as the stateless API sees it: the workers' registry log, tailed from the start.

Workers hold the registry in a Faust ``GlobalTable`` whose changelog is the log; this process
has no Faust app, so it reads the same compacted topic with a plain consumer (no group, every
record), folds it into a :class:`~signals_stream.registry.Registry` exactly as the workers do,
and recompiles the catalog once per fetched batch.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from signals_stream.engine import Catalog
from signals_stream.errors import DefinitionError
from signals_stream.kafka.auth import client_auth
from signals_stream.kafka.topics import tail_consumer, topic_partitions
from signals_stream.registry import Registry
from signals_stream.registry.entries import fixed_entries
from signals_stream.registry.loader import load_definitions
from signals_stream.settings import Settings

__all__ = ["RegistryTail", "initial_registry", "registry_topic"]

logger = logging.getLogger(__name__)

_RETRY_S = 2.0


def registry_topic(app_id: str) -> str:
    """The registry log: the changelog Faust names after the ``registry`` table."""
    return f"{app_id}-registry-changelog"


def initial_registry(settings: Settings) -> Registry:
    """Built-in keys plus the definitions file, as every worker starts (``app.py``).

    Raises:
        DefinitionError: the definitions file is invalid.
    """
    if settings.definitions is None:
        return Registry()
    loaded = load_definitions(settings.definitions)
    return Registry(fixed_entries(loaded.keys, loaded.groups, loaded.interventions))


class RegistryTail:
    """Folds the registry log into :attr:`registry`; :attr:`catalog` is its compilation.

    :attr:`ready` is set once the log has been read up to its end as of the start.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topic = registry_topic(settings.app_id)
        self.registry = initial_registry(settings)
        self.catalog: Catalog = self.registry.catalog()
        self.ready = asyncio.Event()
        self.records = 0

    async def run(self) -> None:
        """Tail the log forever, reconnecting after broker failures."""
        while True:
            try:
                await self._follow()
            except KafkaError as exc:
                logger.error("registry log %s: %s; retrying", self.topic, exc)
                await asyncio.sleep(_RETRY_S)

    async def _follow(self) -> None:
        auth = client_auth(self.settings)
        bootstrap = self.settings.bootstrap_servers
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
        consumer = tail_consumer(bootstrap, self.topic, from_beginning=True, auth=auth)
        await consumer.start()
        try:
            end = await self._end_offsets(consumer)
            while True:
                batches = await consumer.getmany(timeout_ms=500)
                changed = False
                for messages in batches.values():
                    for message in messages:
                        self._apply(message.key, message.value, message.offset)
                        changed = True
                if changed:
                    self._recompile()
                if not self.ready.is_set() and await self._caught_up(consumer, end):
                    self.ready.set()
                    logger.info(
                        "registry log read (%d records): %d groups published",
                        self.records,
                        len(self.catalog.groups),
                    )
        finally:
            await consumer.stop()

    @staticmethod
    async def _end_offsets(consumer: AIOKafkaConsumer) -> dict:
        while not consumer.assignment():
            await asyncio.sleep(0.05)
        return await consumer.end_offsets(list(consumer.assignment()))

    @staticmethod
    async def _caught_up(consumer: AIOKafkaConsumer, end: dict) -> bool:
        for tp, offset in end.items():
            if await consumer.position(tp) < offset:
                return False
        return True

    def _apply(self, key: bytes | None, value: bytes | None, offset: int) -> None:
        self.records += 1
        if key is None:
            return
        try:
            self.registry.apply(key, value)
        except DefinitionError as exc:
            logger.error("registry record at offset %s skipped: %s", offset, exc)

    def _recompile(self) -> None:
        try:
            self.catalog = self.registry.catalog()
        except DefinitionError as exc:  # validated on write; only an older writer could do it
            logger.error("registry definitions cannot run together, keeping the last: %s", exc)
