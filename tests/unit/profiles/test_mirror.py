"""The row mirror against real Redis servers: the shared one (a prefix per test) and private
``redis-server`` processes the tests stop and start."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from signals_stream.engine.row import EntityRow, encode_row
from signals_stream.profiles import RedisLayout, RowMirror, connect
from tests.redis_server import SHARED_REDIS_URL, RedisServer, delete_prefix, unique_prefix
from tests.unit.profiles.rows import MemoryTable, example_catalog, example_rows, expiry_for

pytestmark = pytest.mark.integration

CATALOG = example_catalog()
EXPIRES_AT = expiry_for(CATALOG)


@pytest.fixture
async def shared() -> AsyncIterator[tuple[aioredis.Redis, RedisLayout]]:
    prefix = unique_prefix("mirror")
    client = connect(SHARED_REDIS_URL)
    try:
        yield client, RedisLayout(prefix)
    finally:
        await client.aclose()
        delete_prefix(SHARED_REDIS_URL, prefix)


@pytest.fixture
def private(tmp_path: Path) -> Iterator[RedisServer]:
    """A private server, not started: the test decides when Redis is there."""
    server = RedisServer(tmp_path / "redis.log")
    try:
        yield server
    finally:
        server.kill()


def _now_ms() -> int:
    return int(time.time() * 1000)


async def _copy(client: aioredis.Redis, layout: RedisLayout, keys: list[bytes]) -> dict:
    values = await client.mget([layout.row_of(k) for k in keys]) if keys else []
    return dict(zip(keys, values, strict=True))


async def test_a_row_lands_as_its_bytes_and_expires_with_the_row(shared) -> None:  # noqa: ANN001
    client, layout = shared
    now = _now_ms()
    rows = example_rows(CATALOG, now_ms=now)
    mirror = RowMirror(client, layout, expires_at=EXPIRES_AT)
    table = MemoryTable(rows)
    table.held = set()  # queued writes only, no partition copy
    for key, value in rows.items():
        mirror.put(key, value, table.partition_of(key))
    await mirror.step(table)
    assert await _copy(client, layout, list(rows)) == rows
    assert mirror.stats.written == len(rows) and mirror.stats.lag_rows == 0
    # The example groups have TTLs: each copy expires when the table's sweep would drop the row.
    for key, value in list(rows.items())[:20]:
        pttl = await client.pttl(layout.row_of(key))
        expected = EXPIRES_AT(key, value)
        assert expected is not None
        assert expected - _now_ms() - 2_000 <= pttl <= expected - now


async def test_rows_without_ttl_persist_expired_ones_and_deletes_go(shared) -> None:  # noqa: ANN001
    client, layout = shared
    forever, gone, swept = b"domain_userid\x1fa", b"domain_userid\x1fb", b"domain_userid\x1fc"
    deadlines = {forever: None, gone: _now_ms() - 1, swept: _now_ms() + 60_000}
    mirror = RowMirror(client, layout, expires_at=lambda key, value: deadlines[key])
    value = encode_row(EntityRow())
    await client.set(layout.row_of(gone), b"old")
    for key in deadlines:
        mirror.put(key, value, 0)
    await mirror.step(MemoryTable())
    assert await client.pttl(layout.row_of(forever)) == -1  # no expiry
    assert await client.exists(layout.row_of(gone)) == 0  # already past its expiry
    assert 0 < await client.pttl(layout.row_of(swept)) <= 60_000
    mirror.delete(swept, 0)
    await mirror.step(MemoryTable())
    assert await client.exists(layout.row_of(swept)) == 0
    assert mirror.stats.deleted == 2


async def test_writes_to_a_row_coalesce_while_redis_is_away(private: RedisServer) -> None:
    client = connect(private.url, timeout_s=0.5)
    layout = RedisLayout(unique_prefix("coalesce"))
    mirror = RowMirror(client, layout, expires_at=lambda key, value: None)
    key = b"domain_userid\x1fu1"
    started = time.perf_counter()
    for n in range(5_000):
        mirror.put(key, b"value-%d" % n, 0)
    assert time.perf_counter() - started < 0.5  # the stream's side is a dict assignment
    assert mirror.stats.lag_rows == 1
    with pytest.raises((OSError, aioredis.ConnectionError)):
        await mirror.step(MemoryTable())
    assert mirror.stats.lag_rows == 1  # kept for the next step
    private.start()
    await mirror.step(MemoryTable())
    assert await client.get(layout.row_of(key)) == b"value-4999"
    assert mirror.stats.written == 1 and mirror.stats.lag_rows == 0
    await client.aclose()


async def test_the_queue_is_bounded_and_overflow_recopies_the_partitions(
    private: RedisServer,
) -> None:
    client = connect(private.url, timeout_s=0.5)
    layout = RedisLayout(unique_prefix("overflow"))
    mirror = RowMirror(client, layout, expires_at=lambda k, v: None, max_pending_bytes=20_000)
    table = MemoryTable()
    for n in range(2_000):  # ~300 kB of rows against a 20 kB bound
        key = b"domain_userid\x1fuser-%d" % n
        value = b"x" * 100 + b"%d" % n
        mirror.put(key, value, table.put(key, value))
        assert mirror.stats.lag_rows * 150 <= 20_000
    assert mirror.stats.overflows >= 1
    assert mirror.stats.resyncing_partitions >= 1
    private.start()
    while mirror.stats.resyncing_partitions or mirror.stats.lag_rows:
        await mirror.step(table)
    assert await _copy(client, layout, list(table.all_rows())) == table.all_rows()
    synced = await client.mget([layout.synced(p) for p in table.held])
    assert None not in synced
    await client.aclose()


async def test_a_resync_copies_rows_in_chunks_and_newer_writes_win(shared) -> None:  # noqa: ANN001
    client, layout = shared
    rows = {b"domain_userid\x1fid-%03d" % n: b"v0-%d" % n for n in range(50)}
    table = MemoryTable(rows)
    mirror = RowMirror(client, layout, expires_at=lambda k, v: None, batch_rows=4)
    mirror.request_resync(table.held)
    step = 0
    while mirror.stats.resyncing_partitions:
        await mirror.step(table)
        step += 1
        # The stream keeps writing rows, some already copied, some not yet.
        for key in list(rows)[step % 7 :: 9]:
            value = b"v%d-%s" % (step, key)
            mirror.put(key, value, table.put(key, value))
    while mirror.stats.lag_rows:  # the last queued writes, 4 rows a pipeline
        await mirror.step(table)
    assert step > 4, "copied a chunk at a time"
    assert await _copy(client, layout, list(table.all_rows())) == table.all_rows()
    assert mirror.stats.resynced_rows >= len(rows)


async def test_nothing_is_copied_or_marked_while_a_rebalance_runs(shared) -> None:  # noqa: ANN001
    client, layout = shared
    table = MemoryTable({b"domain_userid\x1fid-%d" % n: b"v%d" % n for n in range(30)})
    table.recovered = False  # partitions half recovered
    mirror = RowMirror(client, layout, expires_at=lambda k, v: None)
    mirror.request_resync(table.held)
    for _ in range(3):
        await mirror.step(table)
    assert mirror.stats.resyncing_partitions == len(table.held)
    assert await client.mget([layout.synced(p) for p in table.held]) == [None] * len(table.held)
    assert set((await _copy(client, layout, list(table.all_rows()))).values()) == {None}
    table.recovered = True
    while mirror.stats.resyncing_partitions:
        await mirror.step(table)
    assert await _copy(client, layout, list(table.all_rows())) == table.all_rows()


async def test_a_lost_synced_mark_triggers_a_new_copy(shared) -> None:  # noqa: ANN001
    client, layout = shared
    table = MemoryTable({b"domain_userid\x1fid-%d" % n: b"v%d" % n for n in range(30)})
    mirror = RowMirror(client, layout, expires_at=lambda k, v: None, check_every_s=0.0)
    await mirror.step(table)  # no marks yet: every owned partition is copied
    while mirror.stats.resyncing_partitions:
        await mirror.step(table)
    assert await _copy(client, layout, list(table.all_rows())) == table.all_rows()
    # Redis loses the data (a restart without persistence, a flush): the next check notices.
    delete_prefix(SHARED_REDIS_URL, layout.prefix)
    await mirror.step(table)
    while mirror.stats.resyncing_partitions:
        await mirror.step(table)
    assert await _copy(client, layout, list(table.all_rows())) == table.all_rows()


async def test_a_revoked_partition_is_forgotten(shared) -> None:  # noqa: ANN001
    client, layout = shared
    table = MemoryTable()
    mirror = RowMirror(client, layout, expires_at=lambda k, v: None)
    keys = [b"domain_userid\x1fid-%d" % n for n in range(40)]
    for key in keys:
        mirror.put(key, b"v", table.put(key, b"v"))
    revoked = table.partition_of(keys[0])
    mirror.forget({revoked})
    await mirror.step(table)
    copies = await _copy(client, layout, keys)
    assert {k for k, v in copies.items() if v is None} == {
        k for k in keys if table.partition_of(k) == revoked
    }


async def test_the_mirror_rides_out_a_redis_crash_and_catches_up(
    private: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="signals_stream.profiles.mirror")
    private.start()
    client = connect(private.url, timeout_s=0.5)
    layout = RedisLayout(unique_prefix("crash"))
    table = MemoryTable()
    mirror = RowMirror(client, layout, expires_at=lambda k, v: None, check_every_s=0.2)
    running = asyncio.create_task(mirror.run(table))
    slowest_put = 0.0

    async def write(rounds: int, tag: bytes, users: int) -> None:
        nonlocal slowest_put
        for n in range(rounds):
            for user in range(users):
                key = b"domain_userid\x1fuser-%d" % user
                value = b"%s-%d-%d" % (tag, n, user)
                started = time.perf_counter()
                mirror.put(key, value, table.put(key, value))
                slowest_put = max(slowest_put, time.perf_counter() - started)
            await asyncio.sleep(0.01)

    try:
        await write(30, b"before", users=80)
        await _until(lambda: mirror.stats.lag_rows == 0 and not mirror.stats.resyncing_partitions)
        private.kill()
        await write(100, b"during", users=50)  # ~1 s with Redis gone; 30 users idle
        assert not running.done()
        assert not mirror.stats.redis_up and mirror.stats.errors > 0
        assert mirror.stats.lag_rows == 50  # one queued value per row: coalesced
        private.start()  # same port, empty: the idle users come back through a resync
        expected = table.all_rows()
        assert len(expected) == 80

        async def caught_up() -> bool:
            return await _copy(client, layout, list(expected)) == expected

        await _until_async(caught_up)
        assert mirror.stats.redis_up
        assert slowest_put < 0.005
        messages = [r.getMessage() for r in caplog.records]
        assert any("Redis unreachable" in m and "the stream goes on" in m for m in messages)
        assert any("Redis answers again" in m for m in messages)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await client.aclose()


async def _until(predicate, timeout_s: float = 10.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def _until_async(predicate, timeout_s: float = 15.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while not await predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)
