"""The registry log as a Faust ``GlobalTable``: every worker reads all of it, all the time.

The log is the table's compacted changelog (``<app_id>-registry-changelog``, one partition).
API writes are produced straight to it (a web view has no stream event to write a table from),
and every worker, the writer included, folds each record into its ``Registry`` through the
table's changelog callback, then installs the recompiled catalog: a publish on one worker is
live on all of them within a fetch or two, and a restarted worker reads the whole log again
(in-memory store) before its streams resume.

``partitions=1, recovery_buffer_size=1`` is the documented workaround for GlobalTable recovery
loops with several workers; ``use_partitioner=True`` makes the assignor give every worker the
partition as a standby as well, so it keeps being tailed after recovery.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from faust.types import AppT, EventT, TableT

from signals_stream.engine.installed import LiveCatalog
from signals_stream.errors import DefinitionError, RegistryUnavailable
from signals_stream.registry import Change, Registry

__all__ = ["RegistryLog", "declare_registry_table"]

logger = logging.getLogger(__name__)

# Longest an API write waits to read its own records back before answering 503.
WRITE_VISIBLE_TIMEOUT_S = 10.0


class RegistryLog:
    """Folds the registry log into ``registry``, recompiles the catalog, and writes to it."""

    def __init__(self, registry: Registry, live: LiveCatalog) -> None:
        self.registry = registry
        self._live = live
        self.offset = -1
        self._changed = asyncio.Event()
        self._install_pending = False
        self._table: TableT | None = None
        # One API write at a time per worker: a command validates against the registry as of
        # its own previous writes.
        self.write_lock = asyncio.Lock()

    def attach(self, table: TableT) -> None:
        self._table = table

    async def on_record(self, event: EventT) -> None:
        message = event.message
        try:
            if message.key is not None:  # every registry record is keyed by its entry
                self.registry.apply(message.key, message.value)
        except DefinitionError as exc:
            logger.error("registry record at offset %s skipped: %s", message.offset, exc)
        self.offset = max(self.offset, message.offset)
        self._changed.set()
        if not self._install_pending:
            # Coalesce a burst (the whole log at start-up) into one recompilation; it runs
            # before any stream batch that was fetched after recovery.
            self._install_pending = True
            asyncio.get_running_loop().call_soon(self.install)

    def install(self) -> None:
        self._install_pending = False
        try:
            self._live.install(self.registry.catalog())
        except DefinitionError as exc:  # validated on write; only an older writer could do it
            logger.error("registry definitions cannot run together, keeping the last: %s", exc)

    async def wait_for(self, offset: int, timeout_s: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.offset < offset:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise RegistryUnavailable(
                    "the registry write was accepted by Kafka but this worker has not read it "
                    "back yet; retry the read"
                )
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                continue
        if self._install_pending:
            self.install()

    async def write(self, changes: Sequence[Change]) -> None:
        """Append ``changes`` to the registry log and wait until this worker has applied them,
        so the API answers with its own writes visible (and the catalog installed).

        Raises:
            RegistryUnavailable: the log could not be written or read back in time.
        """
        assert self._table is not None, "declare_registry_table first"
        last = -1
        topic = self._table.changelog_topic
        try:
            for change in changes:
                sent = await topic.send(key=change.key, value=change.value(), partition=0)
                metadata = await sent
                last = max(last, metadata.offset)
        except Exception as exc:  # Kafka errors of every kind: the client gets a 503, not a 500
            raise RegistryUnavailable(f"cannot write the registry log: {exc}") from exc
        if last >= 0:
            await self.wait_for(last, WRITE_VISIBLE_TIMEOUT_S)


def declare_registry_table(app: AppT, log: RegistryLog) -> TableT:
    table = app.GlobalTable(
        "registry",
        key_type=bytes,
        value_type=bytes,
        partitions=1,
        recovery_buffer_size=1,
        use_partitioner=True,
        store="memory://local",  # yarl: a bare "memory://" is falsy and means the default
        on_changelog_event=log.on_record,
        help="Attribute keys, groups, services, interventions and event logs (the registry API).",
    )
    log.attach(table)
    return table
