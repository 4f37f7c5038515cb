"""``signals-stream sync``: run one warehouse group's sync now, or print every group's status,
from outside the workers (the same run as theirs: ``sync.run.sync_once``).

A run is done once its values are *served*, not merely acknowledged by the broker: the owner
of each entity partition applies sync records in partition order, so once a worker's read of
the last entity the run sent to a partition (``GET /entities/{key}/{id}``, routed to its
owner) shows that group's values at least as new, everything the run sent there is applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from urllib.parse import quote

import httpx
from aiokafka import AIOKafkaProducer

from signals_stream.app import ENTITY_EVENTS_TOPIC_SUFFIX
from signals_stream.definitions import AttributeGroup
from signals_stream.engine.synced import SyncItem, group_id
from signals_stream.errors import DefinitionError, Unavailable
from signals_stream.kafka.auth import client_auth
from signals_stream.kafka.registry_log import RegistryLog
from signals_stream.settings import Settings
from signals_stream.sync.run import LastSent, RunTarget, sync_once
from signals_stream.sync.state import SyncStatus, read_statuses

__all__ = ["read_registry", "run_now", "statuses"]

_REGISTRY_TIMEOUT_S = 60.0
_SERVED_TIMEOUT_S = 120.0


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
    """Sync group ``name`` (its latest published version by default) once, from its watermark,
    and wait until a worker serves what the run sent (see the module docstring).

    Raises:
        Unavailable: the values were sent but no worker served them within two minutes.
    """
    group = await _published_group(settings, name, version)
    gid = group_id(group.name, group.version)
    status = (await read_statuses(settings)).get(gid) or SyncStatus(gid)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers, **client_auth(settings)
    )
    await producer.start()
    last_sent: LastSent = {}
    try:
        entity_events = f"{settings.app_id}-{ENTITY_EVENTS_TOPIC_SUFFIX}"
        target = RunTarget(
            producer, settings, entity_events, settings.sync_chunk_rows, progress, last_sent
        )
        await sync_once(group, status, target)
    finally:
        await producer.stop()
    await wait_served(settings, list(last_sent.values()))
    return status


async def wait_served(settings: Settings, items: list[SyncItem]) -> None:
    """Wait until a worker (``SIGNALS_WORKER_URL``, else this host's ``SIGNALS_WEB_PORT``)
    serves each item's group values at least as new as the item's."""
    base = (settings.worker_url or settings.web_url).rstrip("/")
    token = settings.api_token
    headers = {} if token is None else {"Authorization": f"Bearer {token.get_secret_value()}"}
    deadline = time.monotonic() + _SERVED_TIMEOUT_S
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10.0) as client:
        for item in items:
            path = f"/entities/{quote(item.key_name, safe='')}/" + quote(
                item.entity_id.decode(), safe=""
            )
            while not await _served(client, path, item):
                if time.monotonic() > deadline:
                    raise Unavailable(
                        f"sync records sent, but {base} did not serve them within "
                        f"{_SERVED_TIMEOUT_S:.0f} s ({item.key_name}={item.entity_id.decode()})"
                    )
                await asyncio.sleep(0.2)


async def _served(client: httpx.AsyncClient, path: str, item: SyncItem) -> bool:
    try:
        answer = await client.get(path)
    except httpx.HTTPError:
        return False  # the worker is restarting: retry until the deadline
    if answer.status_code != 200:
        return False  # 404 until the row exists, 503 while its partition moves
    held = answer.json().get("synced", {}).get(item.group)
    return held is not None and int(held) >= item.source_ms


async def statuses(settings: Settings) -> dict[str, SyncStatus]:
    return await read_statuses(settings)
