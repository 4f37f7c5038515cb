"""Real entity rows for the profiles-store tests: generated events folded by the engine with
the example definitions (rolling windows, ``time_since_*``, TTLs), and an in-memory table."""

from __future__ import annotations

import bisect
from collections.abc import Callable

from signals_stream.devtools.generator import GeneratorConfig, generate_events
from signals_stream.engine import Catalog, apply_record
from signals_stream.engine.expiry import row_expires_at_ms
from signals_stream.engine.row import EntityRow, decode_row, encode_row
from signals_stream.events.parse import parse_record
from signals_stream.kafka.partitioning import entity_partition
from signals_stream.registry.loader import load_definitions
from signals_stream.routing import entity_row_key, route_event, split_row_key
from tests.integration.expected import EXAMPLE

__all__ = ["MemoryTable", "example_catalog", "example_rows", "expiry_for"]

PARTITIONS = 4


def example_catalog() -> Catalog:
    return load_definitions(EXAMPLE).catalog()


def example_rows(
    catalog: Catalog, *, events: int = 400, users: int = 15, now_ms: int, seed: int = 5
) -> dict[bytes, bytes]:
    """Encoded rows by row key after ``events`` generated events, each applied when it
    happened (not before ``now_ms``), as a live stream would."""
    generated = generate_events(GeneratorConfig(users=users, seed=seed))
    plan = catalog.routing_plan()
    rows: dict[bytes, EntityRow] = {}
    for offset in range(events):
        event = parse_record(next(generated).line)
        applied_ms = max(now_ms, event.event_time_ms)
        for key_name, entity_id, partition, off, projection in route_event(
            event, plan, partition=0, offset=offset
        ):
            row = rows.setdefault(entity_row_key(key_name, entity_id), EntityRow())
            apply_record(row, catalog, key_name, [(partition, off, projection)], now_ms=applied_ms)
    return {key: encode_row(row) for key, row in rows.items()}


def expiry_for(catalog: Catalog) -> Callable[[bytes, bytes], int | None]:
    def expires_at(row_key: bytes, value: bytes) -> int | None:
        return row_expires_at_ms(decode_row(value), catalog.programs.get(split_row_key(row_key)[0]))

    return expires_at


class MemoryTable:
    """A partitioned, key-ordered table standing in for RocksDB (``RowSource``)."""

    def __init__(self, rows: dict[bytes, bytes] | None = None) -> None:
        self.data: dict[int, dict[bytes, bytes]] = {p: {} for p in range(PARTITIONS)}
        self.held = set(range(PARTITIONS))
        self.recovered = True  # False: as during a rebalance
        for key, value in (rows or {}).items():
            self.put(key, value)

    @staticmethod
    def partition_of(row_key: bytes) -> int:
        return entity_partition(split_row_key(row_key)[1], PARTITIONS)

    def put(self, row_key: bytes, value: bytes) -> int:
        partition = self.partition_of(row_key)
        self.data[partition][row_key] = value
        return partition

    def all_rows(self) -> dict[bytes, bytes]:
        return {k: v for part in self.data.values() for k, v in part.items()}

    def ready(self) -> bool:
        return self.recovered

    def owned(self) -> set[int]:
        return set(self.held) if self.recovered else set()

    def rows_after(
        self, partition: int, after: bytes | None, limit: int
    ) -> list[tuple[bytes, bytes]] | None:
        if partition not in self.held:
            return None
        keys = sorted(self.data[partition])
        start = 0 if after is None else bisect.bisect_right(keys, after)
        return [(k, self.data[partition][k]) for k in keys[start : start + limit]]
