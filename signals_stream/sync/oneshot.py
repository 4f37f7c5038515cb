"""``signals-stream sync``: run one warehouse group's sync now, or print every group's status,
from outside the workers (the same run as theirs: ``sync.run.run_group``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from aiokafka import AIOKafkaProducer

from signals_stream.app import ENTITY_EVENTS_TOPIC_SUFFIX
from signals_stream.definitions import AttributeGroup
from signals_stream.engine.synced import group_id
from signals_stream.errors import DefinitionError
from signals_stream.kafka.auth import client_auth
from signals_stream.kafka.registry_log import RegistryLog
from signals_stream.settings import Settings
from signals_stream.sync.run import run_group
from signals_stream.sync.state import SyncStatus, read_statuses
from signals_stream.warehouse import open_warehouse

__all__ = ["read_registry", "run_now", "statuses"]

_REGISTRY_TIMEOUT_S = 60.0


async def read_registry(settings: Settings) -> RegistryLog:
    """The registry log read to its end once (no reader left running)."""
    log = RegistryLog.from_settings(settings)
    reader = asyncio.create_task(log.run(create=False))
    try:
        await asyncio.wait_for(log.ready.wait(), _REGISTRY_TIMEOUT_S)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
    return log


async def _published_group(settings: Settings, name: str, version: int | None) -> AttributeGroup:
    log = await read_registry(settings)
    synced = log.live.catalog.synced
    versions = sorted(v for (n, v) in synced if n == name)
    if not versions or (version is not None and version not in versions):
        which = "" if version is None else f" version {version}"
        raise DefinitionError(f"no published warehouse group {name!r}{which}")
    return synced[(name, version or versions[-1])].definition


async def run_now(
    settings: Settings, name: str, version: int | None, progress: Callable[[int], None]
) -> SyncStatus:
    """Sync group ``name`` (its latest published version by default) once, from its watermark."""
    group = await _published_group(settings, name, version)
    gid = group_id(group.name, group.version)
    status = (await read_statuses(settings)).get(gid) or SyncStatus(gid)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers, **client_auth(settings)
    )
    await producer.start()
    warehouse = await asyncio.to_thread(open_warehouse, settings.warehouse)
    try:
        return await run_group(
            group, status, warehouse, producer, settings,
            f"{settings.app_id}-{ENTITY_EVENTS_TOPIC_SUFFIX}", progress=progress,
        )  # fmt: skip
    finally:
        await asyncio.to_thread(warehouse.close)
        await producer.stop()


async def statuses(settings: Settings) -> dict[str, SyncStatus]:
    return await read_statuses(settings)
