"""Read entity rows back from the profiles store (``mirror`` writes them).

Rows are the exact bytes the owning worker holds, so evaluating them with
``signals_stream.serving.retrieval`` gives the worker's values. A read is refused
(:class:`ProfilesUnavailable`) rather than answered from a copy known to be incomplete: Redis
unreachable, or a partition of the ids without its ``synced`` mark (never copied, or Redis lost
its data and the owner is copying it again). The caller then asks the workers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Iterable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from signals_stream.engine.row import EntityRow, decode_row
from signals_stream.errors import ProfilesUnavailable, StateError
from signals_stream.kafka.partitioning import entity_partition
from signals_stream.profiles.keys import RedisLayout
from signals_stream.serving.retrieval import EntityRef

__all__ = ["ProfilesUnavailable", "RedisRows"]


class RedisRows:
    """Entity rows from Redis, one round trip per call.

    Args:
        client: the Redis client.
        layout: key names (the workers' app id).
        partitions: the entity-state partition count (``SIGNALS_PARTITIONS`` of the workers).
    """

    def __init__(self, client: aioredis.Redis, layout: RedisLayout, partitions: int) -> None:
        self.client = client
        self.layout = layout
        self.partitions = partitions

    async def fetch(self, refs: Collection[EntityRef]) -> dict[EntityRef, EntityRow | None]:
        """Every entity's row (None: no state).

        Raises:
            ProfilesUnavailable: Redis failed, or holds no complete copy of an id's partition.
        """
        ordered = list(refs)
        if not ordered:
            return {}
        partitions = sorted(
            {entity_partition(entity_id.encode(), self.partitions) for _, entity_id in ordered}
        )
        pipe = self.client.pipeline(transaction=False)
        pipe.mget(
            [self.layout.row(key_name, entity_id.encode()) for key_name, entity_id in ordered]
        )
        pipe.mget([self.layout.synced(p) for p in partitions])
        try:
            raws, marks = await pipe.execute()
        except (RedisError, OSError, TimeoutError) as exc:
            raise ProfilesUnavailable(f"Redis unreachable: {exc}", "down") from exc
        _refuse_unsynced(partitions, marks)
        try:
            return {
                ref: None if raw is None else decode_row(raw)
                for ref, raw in zip(ordered, raws, strict=True)
            }
        except StateError as exc:
            raise ProfilesUnavailable(f"unreadable row in Redis: {exc}", "corrupt") from exc

    async def scan_key(
        self, key_name: str, *, chunk: int = 1000
    ) -> AsyncIterator[list[tuple[str, EntityRow]]]:
        """Every row of ``key_name`` (entity id, row), ``chunk`` keys at a time (SCAN, then
        MGET: rows written meanwhile may be seen or not, as in a worker's scan of a live
        table).

        Raises:
            ProfilesUnavailable: Redis failed, or some partition had no ``synced`` mark before
                the scan or lost it by the end (a copy is under way: incomplete).
        """
        await self._all_synced()
        prefix = self.layout.row(key_name, b"")
        try:
            keys: list[bytes] = []
            async for found in self.client.scan_iter(match=_glob(prefix) + b"*", count=chunk):
                keys.append(found)
                if len(keys) >= chunk:
                    yield await self._rows(keys, len(prefix))
                    keys = []
            if keys:
                yield await self._rows(keys, len(prefix))
        except (RedisError, OSError, TimeoutError) as exc:
            raise ProfilesUnavailable(f"Redis unreachable: {exc}", "down") from exc
        await self._all_synced()

    async def _rows(self, keys: list[bytes], skip: int) -> list[tuple[str, EntityRow]]:
        raws: list[Any] = await self.client.mget(keys)  # bytes or None (no decoding)
        try:
            return [
                (key[skip:].decode(), decode_row(raw))
                for key, raw in zip(keys, raws, strict=True)
                if raw is not None  # expired or deleted since the SCAN saw it
            ]
        except (StateError, UnicodeDecodeError) as exc:
            raise ProfilesUnavailable(f"unreadable row in Redis: {exc}", "corrupt") from exc

    async def _all_synced(self) -> None:
        try:
            marks: list[Any] = await self.client.mget(
                [self.layout.synced(p) for p in range(self.partitions)]
            )
        except (RedisError, OSError, TimeoutError) as exc:
            raise ProfilesUnavailable(f"Redis unreachable: {exc}", "down") from exc
        _refuse_unsynced(range(self.partitions), marks)


def _refuse_unsynced(partitions: Iterable[int], marks: Iterable[bytes | None]) -> None:
    unsynced = [p for p, mark in zip(partitions, marks, strict=True) if mark is None]
    if unsynced:
        raise ProfilesUnavailable(
            f"the profiles store holds no complete copy of partitions {unsynced} yet", "syncing"
        )


def _glob(literal: bytes) -> bytes:
    """``literal`` as a Redis glob pattern matching only itself."""
    out = bytearray()
    for byte in literal:
        if byte in b"*?[]\\":
            out += b"\\"
        out.append(byte)
    return bytes(out)
