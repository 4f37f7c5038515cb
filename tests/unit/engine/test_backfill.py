"""Backfill's seam (``engine/backfill.py``): the live road and the backfill road of a backfilled
slot meet at an input offset per row and partition, so every event is counted exactly once
whatever the order, the replays and the overlap of the two roads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signals_stream.definitions import AttributeGroup
from signals_stream.engine import Catalog, SourcedEvent, read_group, step_row
from signals_stream.engine.backfill import apply_backfill
from signals_stream.engine.catalog import backfill_id
from signals_stream.engine.row import decode_row, encode_row
from signals_stream.errors import DefinitionError
from signals_stream.events.event import Event
from tests.unit.engine.test_history import MIN, T0, USER, page_view

SINCE = "2026-01-01T00:00:00Z"
LIVE = {
    "name": "live_group",
    "version": 1,
    "is_published": True,
    "attribute_key": {"name": "domain_userid"},
    "attributes": [{"name": "views", "type": "int64", "events": [], "aggregation": "counter"}],
}
NEW = {
    **LIVE,
    "name": "new_group",
    "backfill_since_tstamp": SINCE,
    "attributes": [
        LIVE["attributes"][0],  # shared with live_group: already has its history
        {
            "name": "pages",
            "type": "int64",
            "events": [],
            "aggregation": "counter",
            "criteria": {
                "all": [
                    {
                        "property": {"type": "atomic", "name": "event_name"},
                        "operator": "=",
                        "value": "page_view",
                    }
                ]
            },
        },  # fmt: skip
        {
            "name": "last_seen",
            "type": "int64",
            "events": [],
            "aggregation": "max",
            "property": {"type": "atomic", "name": "derived_tstamp"},
        },  # fmt: skip
    ],
}
LIVE_MS, NEW_MS = 1_000, 2_000


def catalog() -> Catalog:
    groups = [AttributeGroup.parse(LIVE), AttributeGroup.parse(NEW)]
    return Catalog.build(
        groups, published_at_ms={("live_group", 1): LIVE_MS, ("new_group", 1): NEW_MS}
    )


BID = backfill_id("new_group", 1, NEW_MS)


def test_the_catalog_backfills_only_the_slots_the_group_is_first_to_read() -> None:
    cat = catalog()
    assert list(cat.backfills) == [BID]
    backfill = cat.backfills[BID]
    new = cat.group("new_group", 1)
    assert backfill.slot_ids == {new.attribute("pages").slot.id, new.attribute("last_seen").slot.id}
    assert backfill.since_ms == int(datetime.fromisoformat(SINCE).timestamp() * 1000)
    assert cat.routing_plan().backfills == (BID,)
    steady = {s.id for s in cat.steady_programs["domain_userid"].slots}
    assert steady == {new.attribute("views").slot.id}
    # A definitions file's groups (published at 0) are live from the start: nothing to fill.
    assert Catalog.build([AttributeGroup.parse(NEW)]).backfills == {}


@pytest.mark.parametrize(
    ("value", "reason"),
    [("yesterday", "backfill_since_tstamp"), (1_700_000_000, "ISO 8601"),
     ((datetime.now(UTC) + timedelta(hours=1)).isoformat(), "in the future")],
)  # fmt: skip
def test_backfill_since_must_be_an_iso_time_not_in_the_future(value: Any, reason: str) -> None:
    with pytest.raises(DefinitionError, match=reason) as caught:
        AttributeGroup.parse({**NEW, "backfill_since_tstamp": value})
    assert "backfill_since_tstamp" in str(caught.value)
    assert caught.value.http_status == 422


# One user's events on two input partitions; the live road flags offsets >= its seam.
EVENTS = {(p, o): page_view(T0 + (p * 100 + o) * 1000) for p in (0, 1) for o in range(12)}


def _live(p: int, o: int, seam: dict[int, int]) -> SourcedEvent:
    flags = (BID,) if o >= seam[p] else ()
    return SourcedEvent(p, o, EVENTS[(p, o)].project(catalog().routing_plan().projection), flags)


@settings(max_examples=150, deadline=None)
@given(
    seam=st.fixed_dictionaries({0: st.integers(0, 12), 1: st.integers(0, 12)}),
    extra=st.fixed_dictionaries({0: st.integers(0, 12), 1: st.integers(0, 12)}),
    schedule=st.lists(st.tuples(st.booleans(), st.integers(1, 5), st.integers(0, 3)), max_size=40),
)
def test_every_event_counts_once_whatever_the_order_replays_and_overlap(
    seam: dict[int, int], extra: dict[int, int], schedule: list[tuple[bool, int, int]]
) -> None:
    """The live road has every offset (flagged from ``seam`` on), the backfill road offsets
    below ``end >= seam``; both are delivered in slices in any interleaving, each slice
    possibly starting again up to 3 offsets back (a replay after a crash)."""
    cat = catalog()
    backfill = cat.backfills[BID]
    end = {p: min(12, seam[p] + extra[p]) for p in (0, 1)}
    position = {("live", p): 0 for p in (0, 1)} | {("backfill", p): 0 for p in (0, 1)}
    raw: bytes | None = None
    steps = [*schedule, *[(road, 12, 0) for road in (True, False) for _ in range(4)]]
    for i, (is_live, size, back) in enumerate(steps):
        p = i % 2
        road = "live" if is_live else "backfill"
        limit = 12 if is_live else end[p]
        start = max(0, position[(road, p)] - back)
        offsets = range(start, min(limit, start + size))
        position[(road, p)] = max(position[(road, p)], offsets.stop)
        if is_live:
            events = [_live(p, o, seam) for o in offsets]
            raw = step_row(raw, cat, "domain_userid", USER.encode(), events, T0 + 10**6).row
        else:
            row = decode_row(raw)
            apply_backfill(row, backfill, [(p, o, EVENTS[(p, o)]) for o in offsets], T0 + 10**6)
            raw = encode_row(row)
    for p in (0, 1):  # both roads read to their ends at last
        assert position[("live", p)] == 12 and position[("backfill", p)] == end[p]
    values = read_group(decode_row(raw), cat.group("new_group", 1), T0 + 10**6)
    newest: Event = max(EVENTS.values(), key=lambda e: e.event_time_ms)
    assert values["views"] == 24  # the steady slot: every live event, as before
    assert values["pages"] == 24  # each of the 24 events once: from one road or the other
    last_seen = datetime.fromisoformat(values["last_seen"])
    assert int(last_seen.timestamp() * 1000) == newest.event_time_ms


def test_a_new_backfill_start_on_a_published_group_is_a_new_publication() -> None:
    from signals_stream.registry import Registry, create, update

    registry = Registry()
    for change in create(registry, "attribute_groups", LIVE, 1_000)[1]:
        registry.apply(change.key, change.value())
    assert registry.catalog().backfills == {}
    body = {**LIVE, "backfill_since_tstamp": SINCE}
    for change in update(registry, "attribute_groups", "live_group", 1, body, 5_000)[1]:
        registry.apply(change.key, change.value())
    assert registry.get("attribute_groups", "live_group").published_at_ms == 5_000
    assert list(registry.catalog().backfills) == [backfill_id("live_group", 1, 5_000)]
    # The same start again changes nothing: no state reset, no new backfill.
    for change in update(registry, "attribute_groups", "live_group", 1, body, 9_000)[1]:
        registry.apply(change.key, change.value())
    assert registry.get("attribute_groups", "live_group").published_at_ms == 5_000


HOUR = 3_600_000
TTL_GROUP = {
    **LIVE,
    "name": "ttl_group",
    "backfill_since_tstamp": SINCE,
    "attributes": [{**LIVE["attributes"][0], "name": "recent_views", "ttl": "PT1H"}],
}


def _ttl_catalog(published_ms: int, backfilled: bool = True) -> Catalog:
    body = TTL_GROUP if backfilled else {k: v for k, v in TTL_GROUP.items() if "backfill" not in k}
    return Catalog.build(
        [AttributeGroup.parse(body)], published_at_ms={("ttl_group", 1): published_ms}
    )


def _read_views(raw: bytes, cat: Catalog, at_ms: int) -> Any:
    return read_group(decode_row(raw), cat.group("ttl_group", 1), at_ms)["recent_views"]


def test_the_backfill_road_judges_ttls_at_each_events_time() -> None:
    """Four views, the last two more than the TTL after the first two: on event time the
    counter starts again at the third (2), and expires an hour after the fourth, as a stream
    live since T0 would; on the fold's wall clock it would be 4 and fresh."""
    cat = _ttl_catalog(T0 + 10 * HOUR)
    backfill = next(iter(cat.backfills.values()))
    times = [T0, T0 + 10 * MIN, T0 + 3 * HOUR, T0 + 3 * HOUR + 10 * MIN]
    row = decode_row(None)
    done = apply_backfill(
        row, backfill, [(0, o, page_view(t)) for o, t in enumerate(times)], T0 + 4 * HOUR
    )
    assert done.applied == 4
    raw = encode_row(row)
    assert _read_views(raw, cat, T0 + 4 * HOUR) == 2
    assert _read_views(raw, cat, T0 + 4 * HOUR + 30 * MIN) == 0  # the counter's default
    # A live event at the wall clock afterwards: the update time moves forward only.
    live = SourcedEvent(
        0, 4, page_view(T0 + 9 * HOUR).project(cat.routing_plan().projection), (backfill.id,)
    )
    raw = step_row(raw, cat, "domain_userid", USER.encode(), [live], T0 + 9 * HOUR).row
    assert _read_views(raw, cat, T0 + 9 * HOUR + 30 * MIN) == 1  # reset: 9 h > the TTL
    row = decode_row(raw)
    apply_backfill(row, backfill, [(1, 0, page_view(T0 + 8 * HOUR + 50 * MIN))], T0 + 9 * HOUR)
    assert _read_views(encode_row(row), cat, T0 + 9 * HOUR + 55 * MIN) == 2  # still fresh


def test_an_earlier_publications_state_is_dropped_when_the_backfill_reaches_the_row() -> None:
    """State folded under an earlier publication after ``since`` is neither kept nor counted
    twice: the backfill re-reads that event and the row holds it once."""
    event = page_view(T0 + HOUR)
    old = _ttl_catalog(T0, backfilled=False)
    live = SourcedEvent(0, 0, event.project(old.routing_plan().projection))
    raw = step_row(None, old, "domain_userid", USER.encode(), [live], T0 + HOUR).row
    assert _read_views(raw, old, T0 + HOUR) == 1
    new = _ttl_catalog(T0 + 2 * HOUR)
    assert _read_views(raw, new, T0 + HOUR) == 0  # stale until the backfill's roads reach it
    row = decode_row(raw)
    apply_backfill(row, next(iter(new.backfills.values())), [(0, 0, event)], T0 + 2 * HOUR)
    assert _read_views(encode_row(row), new, T0 + HOUR + 30 * MIN) == 1
