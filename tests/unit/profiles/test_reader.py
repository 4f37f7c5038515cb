"""Reading rows back from Redis: the same values as from the table, or a refusal the API turns
into a fallback to the workers."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from signals_stream.engine.row import decode_row, encode_row
from signals_stream.profiles import ProfilesUnavailable, RedisLayout, RedisRows, RowMirror, connect
from signals_stream.registry import OnlineAttributesRequest, Registry
from signals_stream.registry.entries import fixed_entries
from signals_stream.routing import entity_row_key, split_row_key
from signals_stream.serving.retrieval import answer, needed_rows, resolve_columns
from tests.redis_server import SHARED_REDIS_URL, RedisServer, delete_prefix, unique_prefix
from tests.unit.profiles.rows import (
    PARTITIONS,
    MemoryTable,
    example_catalog,
    example_rows,
    expiry_for,
)

pytestmark = pytest.mark.integration

CATALOG = example_catalog()


@pytest.fixture
async def store() -> AsyncIterator[tuple[aioredis.Redis, RedisLayout]]:
    prefix = unique_prefix("reader")
    client = connect(SHARED_REDIS_URL)
    try:
        yield client, RedisLayout(prefix)
    finally:
        await client.aclose()
        delete_prefix(SHARED_REDIS_URL, prefix)


async def _mirrored(client: aioredis.Redis, layout: RedisLayout, rows: dict[bytes, bytes]) -> None:
    """Copy ``rows`` the way a worker does: a full resync of every partition."""
    mirror = RowMirror(client, layout, expires_at=expiry_for(CATALOG))
    table = MemoryTable(rows)
    mirror.request_resync(table.held)
    while mirror.stats.resyncing_partitions:
        await mirror.step(table)


def _request(ids: dict[str, list[str]]) -> OnlineAttributesRequest:
    attributes = [
        f"{group.definition.full_name}:{name}"
        for group in CATALOG.groups.values()
        if group.key_name in ids
        for name in group.attribute_names
    ]
    return OnlineAttributesRequest.parse({"attribute_keys": ids, "attributes": attributes})


async def test_values_from_redis_equal_the_tables_at_the_same_instant(store) -> None:  # noqa: ANN001
    client, layout = store
    written_ms = int(time.time() * 1000) - 90_000
    rows = example_rows(CATALOG, now_ms=written_ms, events=600, users=12)
    await _mirrored(client, layout, rows)
    ids: dict[str, list[str]] = {}
    for row_key in rows:
        key_name, entity_id = split_row_key(row_key)
        ids.setdefault(key_name, []).append(entity_id.decode())
    registry = Registry(fixed_entries(groups=[g.definition for g in CATALOG.groups.values()]))
    reader = RedisRows(client, layout, PARTITIONS)
    # Generated events run over a few hours: read at instants across them and after.
    first_event_ms = min(decode_row(raw).first_ms or 0 for raw in rows.values())
    last_event_ms = max(decode_row(raw).last_ms or 0 for raw in rows.values())
    moved = set()
    for key_name, key_ids in ids.items():
        request = _request({key_name: key_ids[:100] + ["never-seen"]})
        columns = resolve_columns(request, CATALOG, registry)
        from_redis = await reader.fetch(needed_rows(request, columns))
        from_table = {
            ref: None if raw is None else decode_row(raw)
            for ref in needed_rows(request, columns)
            for raw in [rows.get(entity_row_key(ref[0], ref[1].encode()))]
        }
        # Rolling windows, time_since_* and TTLs move with the clock: same instant, same values.
        answers = []
        for now_ms in range(first_event_ms, last_event_ms + 3_600_000, 600_000):
            answers.append(answer(request, columns, from_redis, now_ms))
            assert answers[-1] == answer(request, columns, from_table, now_ms)
        moved |= {n for a, b in itertools.pairwise(answers) for n in a if a[n] != b[n]}
        late = written_ms + 8 * 86_400_000  # past every TTL: defaults
        assert answer(request, columns, from_redis, late) == answer(
            request, columns, from_table, late
        )
    assert {"page_views_last_30_min", "minutes_since_last_event"} <= moved, moved


async def test_an_unsynced_partition_is_refused(store) -> None:  # noqa: ANN001
    client, layout = store
    reader = RedisRows(client, layout, PARTITIONS)
    with pytest.raises(ProfilesUnavailable) as refused:
        await reader.fetch([("domain_userid", "u1")])
    assert refused.value.reason == "syncing"
    for partition in range(PARTITIONS):
        await client.set(layout.synced(partition), b"1")
    assert await reader.fetch([("domain_userid", "u1")]) == {("domain_userid", "u1"): None}


async def test_redis_down_is_refused_quickly(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis.log")  # never started: nothing listens on its port
    client = connect(server.url, timeout_s=0.5)
    started = time.monotonic()
    with pytest.raises(ProfilesUnavailable) as refused:
        await RedisRows(client, RedisLayout("x"), PARTITIONS).fetch([("domain_userid", "u1")])
    assert refused.value.reason == "down"
    assert time.monotonic() - started < 2.0
    await client.aclose()


async def test_a_key_scan_gives_every_row_of_that_key_once(store) -> None:  # noqa: ANN001
    client, layout = store
    rows = example_rows(CATALOG, now_ms=int(time.time() * 1000), events=600, users=40)
    await _mirrored(client, layout, rows)
    # A key name sharing the prefix and a glob character in an id must not confuse the scan.
    await client.set(layout.row("domain_userid_x", b"other"), b"junk")
    await client.set(layout.row("domain_userid", b"odd*[id]?"), rows[next(iter(rows))])
    reader = RedisRows(client, layout, PARTITIONS)
    for key_name in ("domain_userid", "domain_sessionid"):
        expected = {
            entity_id.decode(): raw
            for row_key, raw in rows.items()
            for name, entity_id in [split_row_key(row_key)]
            if name == key_name
        }
        if key_name == "domain_userid":
            expected["odd*[id]?"] = rows[next(iter(rows))]
        seen: list[str] = []
        async for chunk in reader.scan_key(key_name, chunk=7):
            assert len(chunk) <= 7
            for entity_id, row in chunk:
                assert encode_row(row) == encode_row(decode_row(expected[entity_id]))
                seen.append(entity_id)
        assert sorted(seen) == sorted(expected) and len(expected) > 7


async def test_a_key_scan_is_refused_when_a_partition_loses_its_mark(store) -> None:  # noqa: ANN001
    client, layout = store
    rows = example_rows(CATALOG, now_ms=int(time.time() * 1000), events=300, users=20)
    await _mirrored(client, layout, rows)
    reader = RedisRows(client, layout, PARTITIONS)
    with pytest.raises(ProfilesUnavailable) as refused:
        async for _ in reader.scan_key("domain_userid", chunk=5):
            await client.delete(layout.synced(PARTITIONS - 1))  # a copy started meanwhile
    assert refused.value.reason == "syncing"
    with pytest.raises(ProfilesUnavailable):  # and before starting
        async for _ in reader.scan_key("domain_userid"):
            pass
