"""Warehouse values in entity rows: records, idempotent apply, TTL on read, expiry, and
retrieval beside stream attributes."""

from __future__ import annotations

import pytest

from signals_stream.engine.catalog import Catalog
from signals_stream.engine.expiry import row_expired, row_expires_at_ms
from signals_stream.engine.row import EntityRow, decode_row, encode_row
from signals_stream.engine.synced import (
    SyncItem,
    apply_synced,
    decode_sync_record,
    encode_sync_records,
)
from signals_stream.registry import OnlineAttributesRequest, Registry
from signals_stream.serving.retrieval import answer, resolve_columns
from tests.unit.registry.test_batch_source import EXTERNAL
from tests.unit.registry.test_commands import GROUP, run_create

DAY = 86_400_000
YEAR = 365 * DAY
T = 1_780_000_000_000


def item(ts: int, ltv: float | None, gid: str | None = "crm:1") -> SyncItem:
    return SyncItem("CUSTOMER_ID", b"c1", gid, ts, None if ltv is None else {"LTV": ltv})


def test_records_round_trip_and_split() -> None:
    items = [SyncItem("k", f"id-{i}\x1f".encode(), "g:1", T + i, {"v": i}) for i in range(50)]
    records = encode_sync_records(items, max_bytes=300)
    assert len(records) > 1
    assert [x for r in records for x in decode_sync_record(r) or []] == items
    assert decode_sync_record(b"domain_userid 2 0 5 3\nu1abc") is None  # an events record
    with pytest.raises(ValueError):
        decode_sync_record(records[0][:-3])


def test_apply_keeps_the_newest_warehouse_value_and_is_idempotent() -> None:
    row = EntityRow()
    assert apply_synced(row, [item(T, 1.0)], now_ms=T)
    assert not apply_synced(row, [item(T - 1, 9.0)], now_ms=T)  # an older re-sent chunk
    assert row.synced["crm:1"] == [{"LTV": 1.0}, T]
    apply_synced(row, [item(T + 5, 2.0), item(T + 5, 2.0)], now_ms=T)  # a replay: same effect
    assert decode_row(encode_row(row)).synced == {"crm:1": [{"LTV": 2.0}, T + 5]}
    assert apply_synced(row, [item(0, None, gid=None)], now_ms=T)  # forget: everything goes
    assert row.synced == {}
    assert b'"w"' not in encode_row(row)


def published() -> tuple[Registry, Catalog]:
    registry = Registry()
    run_create(registry, "attribute_groups", {**EXTERNAL, "is_published": True})
    run_create(registry, "attribute_groups", {**GROUP, "is_published": True})
    return registry, registry.catalog()


def test_reads_mix_stream_and_warehouse_groups_with_the_ttl() -> None:
    registry, catalog = published()
    assert catalog.readable("crm").definition.kind == "external_batch"
    request = OnlineAttributesRequest.parse(
        {"attribute_keys": {"CUSTOMER_ID": ["c1", "c2"]}, "attributes": ["crm_v1:LTV"]}
    )
    columns = resolve_columns(request, catalog, registry)
    row = EntityRow()
    apply_synced(row, [item(T, 42.5)], now_ms=T)
    rows = {("CUSTOMER_ID", "c1"): row}
    assert answer(request, columns, rows, T + DAY) == {
        "CUSTOMER_ID": ["c1", "c2"], "LTV": [42.5, None],
    }  # fmt: skip
    # ttl P1Y from the warehouse timestamp: null once a year has passed without an update.
    assert answer(request, columns, rows, T + YEAR)["LTV"] == [None, None]
    with pytest.raises(Exception, match="no attribute"):
        resolve_columns(
            OnlineAttributesRequest.parse(
                {"attribute_keys": {"CUSTOMER_ID": ["c1"]}, "attributes": ["crm_v1:NOPE"]}
            ),
            catalog,
            registry,
        )


def test_expiry_counts_live_synced_values() -> None:
    _, catalog = published()
    row = EntityRow()
    apply_synced(row, [item(T, 1.0)], now_ms=T)
    ttls = catalog.synced_ttls
    assert ttls == {"crm:1": YEAR}
    assert not row_expired(row, None, T + 300 * DAY, ttls)  # the default idle period is 7 days
    assert row_expired(row, None, T + YEAR + 7 * DAY, ttls)
    assert row_expired(row, None, T + 8 * DAY, {})  # unpublished: no longer keeps the row
    assert row_expires_at_ms(row, None, ttls) == T + YEAR
