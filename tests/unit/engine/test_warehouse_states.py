"""The warehouse part of a backfill (``engine/warehouse_states.py``,
``batch/backfill_states.py``): SQL state rows become the stream reducers' states, travel in
records, and merge into a row once, whatever the live road folded before."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from signals_stream.batch.backfill_states import stream_states
from signals_stream.definitions import AttributeGroup
from signals_stream.engine import Catalog, read_group
from signals_stream.engine.backfill import admit_live
from signals_stream.engine.fold import fold_events
from signals_stream.engine.row import EntityRow
from signals_stream.engine.warehouse_states import (
    WarehouseStates,
    decode_states_record,
    encode_states_records,
    merge_warehouse_states,
)
from tests.unit.engine.test_backfill import BID, NEW, catalog
from tests.unit.engine.test_history import T0, page_view


def test_sql_state_columns_become_the_reducers_states() -> None:
    group = AttributeGroup.parse(
        {
            **NEW,
            "attributes": [
                {"name": "n", "type": "int64", "events": [], "aggregation": "counter"},
                {"name": "zero", "type": "int64", "events": [], "aggregation": "counter"},
                *(
                    {
                        "name": agg,
                        "type": kind,
                        "events": [],
                        "aggregation": agg,
                        "property": {"type": "atomic", "name": prop},
                    }
                    for agg, kind, prop in [
                        ("sum", "int64", "txn_id"),
                        ("mean", "double", "txn_id"),
                        ("max", "double", "txn_id"),
                        ("min", "timestamp", "derived_tstamp"),
                        ("last", "string", "page_url"),
                    ]
                ),  # fmt: skip
            ],
        }
    )
    at = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    row = {
        "n__n": 3, "zero__n": 0, "sum__m": 12.0, "mean__s": Decimal("7.5"), "mean__n": 2,
        "max__m": 0.0, "min__m": at, "last__v": "http://a", "last__t": 17, "last__e": "e1",
    }  # fmt: skip
    assert stream_states(group, row) == {
        "n": 3,  # a zero counter is no state; a zero maximum is one
        "sum": 12,
        "mean": [7.5, 2],
        "max": 0.0,
        "min": "2026-01-02T03:04:05.678000Z",  # the stream's iso_utc text
        "last": ["http://a", 17, "e1"],
    }


def test_records_round_trip_and_split_by_size() -> None:
    items = [WarehouseStates("domain_userid", f"u{i}".encode(), {"s": i}) for i in range(50)]
    records = encode_states_records(BID, items, max_bytes=200)
    assert len(records) > 1
    decoded = [decode_states_record(r) for r in records]
    assert {d[0] for d in decoded if d} == {BID}
    assert [i for d in decoded if d for i in d[1]] == items
    assert decode_states_record(b"domain_userid\tu1") is None  # an entity-events record
    with pytest.raises(ValueError, match="warehouse states"):
        decode_states_record(records[0][:-3])


def test_states_merge_once_with_what_the_live_road_folded() -> None:
    """Warehouse states of the events before the cut merged into a row that already folded
    the later ones equal all of them folded; a resent record changes nothing."""
    cat = catalog()
    backfill = cat.backfills[BID]
    events = [page_view(T0 + i * 60_000) for i in range(6)]
    now = T0 + 10**6
    everything = EntityRow()
    fold_events(everything, backfill.program, events, now)
    warehouse = EntityRow()
    fold_events(warehouse, backfill.program, events[:4], now)  # what the SQL computes
    states = {slot: state for slot, (state, _) in warehouse.attrs.items()}
    row = EntityRow()
    row.attrs["earlier"] = [1, 0]  # an earlier publication's state, dropped by the live road
    live = admit_live(row, backfill, [(0, 100 + i, e) for i, e in enumerate(events[4:])])
    fold_events(row, backfill.program, live, now)  # live, before the states arrive
    assert merge_warehouse_states(row, backfill, states, now)
    assert not merge_warehouse_states(row, backfill, states, now)  # resent: skipped
    group = cat.group("new_group", 1)
    assert read_group(row, group, now) == read_group(everything, group, now)
    assert read_group(row, group, now)["pages"] == 6  # worked out: six page views


def test_the_first_road_to_reach_a_row_drops_the_earlier_publications_state() -> None:
    """Warehouse states reaching a row before either log road: what the backfilled slots
    held (an earlier publication's state) goes, the states are the slots' whole value."""
    cat = catalog()
    backfill = cat.backfills[BID]
    now = T0 + 10**6
    warehouse = EntityRow()
    fold_events(warehouse, backfill.program, [page_view(T0), page_view(T0 + 1)], now)
    states = {slot: state for slot, (state, _) in warehouse.attrs.items()}
    row = EntityRow()
    old = EntityRow()
    fold_events(old, backfill.program, [page_view(T0 - 5)] * 3, now)
    row.attrs.update(old.attrs)  # an earlier publication's three page views
    assert merge_warehouse_states(row, backfill, states, now)
    assert read_group(row, cat.group("new_group", 1), now)["pages"] == 2


def test_a_ttl_slot_merges_as_one_event_at_its_latest_time() -> None:
    """The warehouse state of a TTL'd slot counts from its latest event time: merged into a
    slot updated a TTL or more before it, it replaces that state; within the TTL it adds."""
    group = AttributeGroup.parse(
        {**NEW, "name": "ttl_group", "attributes": [
            {"name": "n", "type": "int64", "events": [], "aggregation": "counter",
             "ttl": "PT10M"},
        ]}
    )  # fmt: skip
    cat = Catalog.build([group], published_at_ms={("ttl_group", 1): T0 + 10**7})
    (backfill,) = cat.backfills.values()
    (slot,) = backfill.program.slots
    read = cat.group("ttl_group", 1)
    for earlier_ms, want in ((T0, 3), (T0 - 10 * 60_000, 2)):
        row = EntityRow()
        live = admit_live(row, backfill, [(0, 5, page_view(earlier_ms))])
        fold_events(row, backfill.program, live, earlier_ms)
        assert merge_warehouse_states(row, backfill, {slot.id: 2}, T0, {slot.id: T0})
        assert row.attrs[slot.id][1] == T0  # the later of the two update times
        assert read_group(row, read, T0 + 60_000)["n"] == want
        assert read_group(row, read, T0 + 10 * 60_000)["n"] == 0  # expired from T0 on
