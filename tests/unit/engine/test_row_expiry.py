"""When a whole entity row may be deleted by the sweep."""

from __future__ import annotations

from signals_stream.definitions import AttributeGroup
from signals_stream.engine import Catalog, apply_record, row_expired
from signals_stream.engine.installed import DEFAULT_KEYS
from signals_stream.engine.row import EntityRow
from signals_stream.events.parse import parse_record
from signals_stream.routing import route_event
from tests.datafiles import DATA_DIR

T0 = 1_800_000_000_000
SECOND = 1000


def _group(ttl: str | None) -> AttributeGroup:
    body = {
        "name": "g",
        "version": 1,
        "attribute_key": {"name": "domain_userid"},
        "is_published": True,
        "attributes": [{"name": "events", "type": "int32", "events": [], "aggregation": "counter"}],
    }
    if ttl is not None:
        body["ttl"] = ttl
    return AttributeGroup.parse(body)


def _row(catalog: Catalog, now_ms: int) -> EntityRow:
    line = (DATA_DIR / "kafka-live-viewer-profiles" / "micro.1.tsv").read_bytes().split(b"\n")[0]
    row = EntityRow()
    items = route_event(parse_record(line), catalog.routing_plan(), partition=0, offset=0)
    key_name, _, partition, offset, projection = next(i for i in items if i[0] == "domain_userid")
    apply_record(row, catalog, key_name, [(partition, offset, projection)], now_ms=now_ms)
    return row


def test_a_row_expires_once_its_states_and_the_idle_period_have_passed() -> None:
    catalog = Catalog.build([_group("PT10S")])
    row = _row(catalog, T0)
    program = catalog.programs["domain_userid"]
    assert row.attrs, "the counter has a state"
    assert not row_expired(row, program, T0 + 9 * SECOND)
    assert row_expired(row, program, T0 + 10 * SECOND)


def test_a_row_with_a_never_expiring_state_is_kept() -> None:
    catalog = Catalog.build([_group(None)])
    row = _row(catalog, T0)
    assert not row_expired(row, catalog.programs["domain_userid"], T0 + 365 * 86_400 * SECOND)


def test_rows_of_keys_no_longer_computed_go_after_the_default_idle_period() -> None:
    catalog = Catalog.build([_group("PT10S")])
    row = _row(catalog, T0)
    assert "domain_sessionid" in DEFAULT_KEYS
    week = 7 * 86_400 * SECOND
    assert not row_expired(row, None, T0 + week - 1)
    assert row_expired(row, None, T0 + week)
