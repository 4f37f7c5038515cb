"""Write-behind copy of entity rows to Redis: the stream never waits for Redis.

The state writer calls :meth:`RowMirror.put` (and the sweep :meth:`RowMirror.delete`) after
writing a row: a dict assignment, nothing else. One background task (:meth:`RowMirror.run`)
drains the dict in pipelines. While Redis is slow or down, writes to one row coalesce (the
latest value wins); past ``max_pending_bytes`` the queued values are dropped and their
partitions are copied again from the table once Redis answers (a *resync*), so memory stays
bounded however long Redis is away.

A resync walks a partition's rows in key order, a chunk per step, and marks the partition
``synced`` in Redis when done (readers trust a partition only with that mark). It runs when a
worker gains partitions (start, rebalance), after an overflow (the mark is removed first), and
when a periodic check finds a mark missing (Redis restarted empty, or was flushed).

Ordering: a step reads its resync chunk first and takes the queued rows afterwards, without an
``await`` in between, and sends both in that order in one pipeline; a queued value is never
older than the chunk's value of the same row, so the newest one lands last.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from signals_stream.profiles.keys import RedisLayout

__all__ = ["MirrorStats", "RowMirror", "RowSource"]

logger = logging.getLogger(__name__)

MIB = 1024 * 1024
_ENTRY_OVERHEAD = 120  # bytes of dict slot, tuple and int around a queued row (an estimate)
_FAILURES = (RedisError, OSError, TimeoutError)


class RowSource(Protocol):
    """The rows this worker holds (the entity-state table), for resyncs."""

    def ready(self) -> bool:
        """False while the partitions may be half recovered (a rebalance): copy nothing."""

    def owned(self) -> set[int]:
        """Partitions whose rows this worker holds, fully recovered (empty when not ready)."""

    def rows_after(
        self, partition: int, after: bytes | None, limit: int
    ) -> list[tuple[bytes, bytes]] | None:
        """Up to ``limit`` ``(row key, value)`` pairs of ``partition`` with keys greater than
        ``after`` (all when None), in key order; None when the partition is not held any more."""


class MirrorStats:
    """Counters of the mirror, for logs and metrics (read at scrape time).

    Attributes:
        lag_rows: rows written to the table and not yet to Redis (queued or failed chunk;
            rows of partitions waiting for a resync are not counted).
        written: rows set in Redis (queued writes and resync copies).
        deleted: rows removed from Redis (swept, or already expired when sent).
        errors: failed Redis round trips.
        resynced_rows: rows copied by resyncs.
        resyncing_partitions: partitions whose copy is being rebuilt.
        overflows: times the queue outgrew its bound and was dropped for a resync.
        redis_up: whether the last round trip succeeded.
    """

    __slots__ = (
        "deleted",
        "errors",
        "lag_rows",
        "overflows",
        "redis_up",
        "resynced_rows",
        "resyncing_partitions",
        "written",
    )

    def __init__(self) -> None:
        self.lag_rows = 0
        self.written = 0
        self.deleted = 0
        self.errors = 0
        self.resynced_rows = 0
        self.resyncing_partitions = 0
        self.overflows = 0
        self.redis_up = True

    def to_json(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(slots=True)
class _Resync:
    invalidate: bool  # remove the partition's synced mark before copying (known incomplete)
    cursor: bytes | None = None  # last row key copied; None: nothing copied yet
    done: bool = False  # the last chunk has been read


# One command for a whole batch of rows: redis-py spends far more per reply than Redis per SET
# (timeouts, parsing), so hundreds of SET replies cost the worker's loop more than the writes.
# KEYS: row keys; ARGV: value, then PX ms (_NO_EXPIRY: none, _DELETE: delete the key), per key.
_WRITE_ROWS = """
for i, key in ipairs(KEYS) do
  local px = tonumber(ARGV[2 * i])
  if px == -1 then
    redis.call('DEL', key)
  elseif px == 0 then
    redis.call('SET', key, ARGV[2 * i - 1])
  else
    redis.call('SET', key, ARGV[2 * i - 1], 'PX', px)
  end
end
return #KEYS
"""
_NO_EXPIRY, _DELETE = 0, -1

# (row key, value or None for a delete, partition)
_Row = tuple[bytes, bytes | None, int]


class RowMirror:
    """Copies rows to Redis behind the stream; see the module docstring.

    Args:
        client: the Redis client (fail-fast, see ``connection.connect``).
        layout: key names.
        expires_at: the wall-clock ms at which a row (key, encoded value) expires, None for
            never; the Redis key gets that PEXPIRE.
        max_pending_bytes: bound of the queue.
        batch_rows: rows per pipeline, from the queue and from a resync chunk each.
        check_every_s: how often the synced marks of owned partitions are checked.
        linger_s: how long a step waits for more rows before sending (fewer, larger pipelines).
    """

    def __init__(
        self,
        client: aioredis.Redis,
        layout: RedisLayout,
        *,
        expires_at: Callable[[bytes, bytes], int | None],
        max_pending_bytes: int = 64 * MIB,
        batch_rows: int = 1000,
        check_every_s: float = 5.0,
        linger_s: float = 0.1,
    ) -> None:
        self.client = client
        self.layout = layout
        self.stats = MirrorStats()
        self._expires_at = expires_at
        self._max_bytes = max_pending_bytes
        self._batch = batch_rows
        self._check_every_s = check_every_s
        self._linger_s = linger_s
        self._pending: dict[bytes, tuple[bytes | None, int]] = {}
        self._pending_bytes = 0
        self._resync: dict[int, _Resync] = {}
        self._carry: list[_Row] = []  # a resync chunk whose pipeline failed, sent first next
        self._wake = asyncio.Event()
        self._next_check = 0.0
        self._sending = False  # a pipeline is on its way to Redis

    # --- the stream's side: never blocks -------------------------------------------------------

    def put(self, row_key: bytes, value: bytes, partition: int) -> None:
        """Queue the row's new value (replacing any queued one)."""
        self._enqueue(row_key, value, partition)

    def delete(self, row_key: bytes, partition: int) -> None:
        """Queue the row's deletion."""
        self._enqueue(row_key, None, partition)

    def _enqueue(self, row_key: bytes, value: bytes | None, partition: int) -> None:
        resync = self._resync.get(partition)
        if (
            value is not None
            and resync is not None
            and not resync.done
            and (resync.cursor is None or row_key > resync.cursor)
        ):
            # The resync has not copied this row yet: it will read the new value. A deletion
            # is always sent: the copy only writes rows that exist, and would leave the old one.
            return
        size = len(row_key) + (len(value) if value is not None else 0) + _ENTRY_OVERHEAD
        old = self._pending.get(row_key)
        if old is not None:
            self._pending_bytes -= len(row_key) + len(old[0] or b"") + _ENTRY_OVERHEAD
        self._pending[row_key] = (value, partition)
        self._pending_bytes += size
        if self._pending_bytes > self._max_bytes:
            self._overflow()
        self.stats.lag_rows = len(self._pending) + len(self._carry)
        self._wake.set()

    async def wait_sent(self, row_key: bytes, timeout_s: float) -> bool:
        """Wait until what is queued for ``row_key`` has reached Redis (no pipeline still on
        its way may carry an older value); False when Redis did not take it within
        ``timeout_s`` (it stays queued)."""
        deadline = time.monotonic() + timeout_s
        while row_key in self._pending or self._sending or self._carry:
            if time.monotonic() >= deadline:
                return False
            self._wake.set()
            await asyncio.sleep(0.02)
        return True

    def _overflow(self) -> None:
        partitions = {partition for _, partition in self._pending.values()}
        dropped = len(self._pending)
        self._pending = {}
        self._pending_bytes = 0
        self.stats.overflows += 1
        self.request_resync(partitions, invalidate=True)
        logger.warning(
            "profiles store: %d rows waiting for Redis exceed SIGNALS_REDIS_MAX_PENDING_MB; "
            "dropped them, partitions %s will be copied again from the table",
            dropped,
            sorted(partitions),
        )

    # --- partitions ----------------------------------------------------------------------------

    def request_resync(self, partitions: Iterable[int], *, invalidate: bool = False) -> None:
        """Copy these partitions again from the table (from the start, if already copying)."""
        for partition in partitions:
            previous = self._resync.get(partition)
            keep_invalidating = previous is not None and previous.invalidate
            self._resync[partition] = _Resync(invalidate=invalidate or keep_invalidating)
        self.stats.resyncing_partitions = len(self._resync)
        self._wake.set()

    def forget(self, partitions: Iterable[int]) -> None:
        """This worker no longer owns these partitions: drop their queued rows and resyncs
        (their new owner copies them)."""
        gone = set(partitions)
        for partition in gone:
            self._resync.pop(partition, None)
        self._pending = {k: v for k, v in self._pending.items() if v[1] not in gone}
        self._pending_bytes = sum(
            len(k) + len(v[0] or b"") + _ENTRY_OVERHEAD for k, v in self._pending.items()
        )
        self._carry = [row for row in self._carry if row[2] not in gone]
        self.stats.resyncing_partitions = len(self._resync)
        self.stats.lag_rows = len(self._pending) + len(self._carry)

    # --- the background task -------------------------------------------------------------------

    async def run(self, source: RowSource) -> None:
        """Drain forever; Redis failures are logged once per outage and retried with backoff."""
        backoff_s = 0.2
        while True:
            wait_s = self._next_check - time.monotonic()
            if not (self._pending or self._carry or self._resync) and wait_s > 0:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=wait_s)
                except TimeoutError:
                    pass
            if self._linger_s and len(self._pending) < self._batch:
                await asyncio.sleep(self._linger_s)  # let a burst coalesce into one pipeline
            waiting = self.stats.lag_rows
            try:
                sent = await self.step(source)
            except _FAILURES as exc:
                self._failed(exc)
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, 5.0)
                continue
            except Exception:  # a bug here must not stop the worker: keep the rows, go on
                logger.exception("profiles store: mirror step failed")
                self.stats.errors += 1
                await asyncio.sleep(1.0)
                continue
            backoff_s = 0.2
            if not sent and self._resync:
                await asyncio.sleep(0.1)  # copies wait for a rebalance to end
            if not self.stats.redis_up:
                self.stats.redis_up = True
                logger.warning(
                    "profiles store: Redis answers again; catching up (%d rows were waiting, "
                    "%d partitions to copy)",
                    waiting,
                    len(self._resync),
                )

    def _failed(self, exc: BaseException) -> None:
        self.stats.errors += 1
        self._next_check = 0.0  # Redis may come back empty: check the marks first thing
        if self.stats.redis_up:
            self.stats.redis_up = False
            logger.error(
                "profiles store: Redis unreachable (%s: %s); the stream goes on, %d rows wait "
                "to be mirrored, readers of the profiles store fall back to the workers",
                type(exc).__name__,
                exc,
                self.stats.lag_rows,
            )

    async def step(self, source: RowSource) -> bool:
        """One pipeline: invalidated marks, a resync chunk, then queued rows. False when
        there was nothing to send.

        Raises:
            RedisError, OSError, TimeoutError: Redis failed; every row is kept for the next step.
        """
        if time.monotonic() >= self._next_check:
            await self._check_marks(source)
        invalidated = [(p, r) for p, r in self._resync.items() if r.invalidate]
        chunk = self._carry or self._next_chunk(source)
        finishing = [(p, r) for p, r in self._resync.items() if r.done]
        taken = self._take_pending()  # after the chunk: see the module docstring
        if not (invalidated or chunk or taken or finishing):
            return False
        now_ms = int(time.time() * 1000)
        pipe = self.client.pipeline(transaction=False)
        for partition, _ in invalidated:
            pipe.delete(self.layout.synced(partition))
        keys: list[bytes] = []
        args: list[bytes | int] = []
        deleted = 0
        for row_key, value, _ in itertools.chain(chunk, taken):
            expires = None if value is None else self._expires_at(row_key, value)
            keys.append(self.layout.row_of(row_key))
            if value is None or (expires is not None and expires <= now_ms):
                args += (b"", _DELETE)
                deleted += 1
            else:
                args += (value, _NO_EXPIRY if expires is None else expires - now_ms)
        if keys:
            pipe.eval(_WRITE_ROWS, len(keys), *keys, *args)
        for partition, _ in finishing:
            pipe.set(self.layout.synced(partition), str(now_ms))
        self._sending = True
        try:
            await pipe.execute()
        except BaseException:
            self._carry = chunk
            for row_key, value, partition in taken:  # newer values queued meanwhile win
                if row_key not in self._pending:
                    self._pending[row_key] = (value, partition)
                    self._pending_bytes += len(row_key) + len(value or b"") + _ENTRY_OVERHEAD
            self.stats.lag_rows = len(self._pending) + len(self._carry)
            raise
        finally:
            self._sending = False
        self._carry = []
        for _, resync in invalidated:
            resync.invalidate = False  # (a restarted copy has its own flag)
        for partition, resync in finishing:
            if self._resync.get(partition) is resync:  # not restarted meanwhile
                del self._resync[partition]
        self.stats.written += len(keys) - deleted
        self.stats.deleted += deleted
        self.stats.resynced_rows += len(chunk)
        self.stats.resyncing_partitions = len(self._resync)
        self.stats.lag_rows = len(self._pending)
        return True

    def _next_chunk(self, source: RowSource) -> list[_Row]:
        """The next rows of the first partition being resynced (its cursor moves on)."""
        if not source.ready():
            return []
        for partition, resync in list(self._resync.items()):
            if resync.done:
                continue
            rows = source.rows_after(partition, resync.cursor, self._batch)
            if rows is None:  # not ours any more
                del self._resync[partition]
                continue
            if len(rows) < self._batch:
                resync.done = True
            if rows:
                resync.cursor = rows[-1][0]
            return [(key, value, partition) for key, value in rows]
        return []

    def _take_pending(self) -> list[_Row]:
        if len(self._pending) <= self._batch:
            taken, self._pending, self._pending_bytes = self._pending, {}, 0
        else:
            keys = list(itertools.islice(self._pending, self._batch))
            taken = {key: self._pending.pop(key) for key in keys}
            self._pending_bytes -= sum(
                len(k) + len(v[0] or b"") + _ENTRY_OVERHEAD for k, v in taken.items()
            )
        return [(key, value, partition) for key, (value, partition) in taken.items()]

    async def _check_marks(self, source: RowSource) -> None:
        """Resync owned partitions whose synced mark is gone (Redis lost its data)."""
        self._next_check = time.monotonic() + self._check_every_s
        partitions = sorted(source.owned() - set(self._resync))
        if not partitions:
            return
        found = await self.client.mget([self.layout.synced(p) for p in partitions])
        missing = [p for p, mark in zip(partitions, found, strict=True) if mark is None]
        if missing:
            logger.info("profiles store: copying partitions %s to Redis", missing)
            self.request_resync(missing)
