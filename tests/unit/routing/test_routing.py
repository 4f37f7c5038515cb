"""Entity-events records: the framing between the ingest and entity agents."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signals_stream.engine.installed import LiveCatalog
from signals_stream.events.parse import parse_record
from signals_stream.routing import (
    decode_entity_events,
    encode_entity_event_records,
    encode_entity_events,
    entity_row_key,
    route_event,
    split_row_key,
)
from tests.datafiles import DATA_DIR

items = st.lists(
    st.tuples(
        st.from_regex(r"[A-Za-z0-9_]{1,20}", fullmatch=True),
        st.binary(max_size=40),  # ids may hold spaces, newlines, any byte
        st.integers(0, 1023),
        st.integers(0, 2**62),
        st.binary(max_size=200),
    ),
    max_size=20,
)


@settings(max_examples=200, deadline=None)
@given(events=items)
def test_entity_events_round_trip(events: list[tuple[str, bytes, int, int, bytes]]) -> None:
    assert decode_entity_events(encode_entity_events(events)) == events


@settings(max_examples=200, deadline=None)
@given(events=items, max_bytes=st.integers(1, 600))
def test_entity_events_split_into_bounded_records_in_order(
    events: list[tuple[str, bytes, int, int, bytes]], max_bytes: int
) -> None:
    records = encode_entity_event_records(events, max_bytes)
    decoded = [decode_entity_events(record) for record in records]
    assert [item for chunk in decoded for item in chunk] == events
    # Every record holds at least one item, and only a lone item may exceed the bound.
    assert all(chunk for chunk in decoded)
    assert all(len(r) <= max_bytes or len(c) == 1 for r, c in zip(records, decoded, strict=True))
    assert b"".join(records) == encode_entity_events(events)


def test_a_truncated_record_is_rejected() -> None:
    raw = encode_entity_events([("domain_userid", b"u1", 0, 7, b'{"v":1}')])
    with pytest.raises(ValueError, match="truncated"):
        decode_entity_events(raw[:-2])


def test_a_real_event_routes_to_each_default_key_with_its_source_position() -> None:
    line = (DATA_DIR / "kafka-live-viewer-profiles" / "micro.1.tsv").read_bytes().split(b"\n")[0]
    event = parse_record(line)
    routed = route_event(event, LiveCatalog().plan, partition=3, offset=41)
    assert {(name, entity_id) for name, entity_id, *_ in routed} == {
        ("domain_userid", event.atomic("domain_userid").encode()),
        ("domain_sessionid", event.atomic("domain_sessionid").encode()),
    }
    assert all((p, o) == (3, 41) for _, _, p, o, _ in routed)


def test_row_keys_keep_equal_ids_of_different_keys_apart() -> None:
    a, b = entity_row_key("user_id", b"x"), entity_row_key("domain_userid", b"x")
    assert a != b
    assert split_row_key(a) == ("user_id", b"x")
