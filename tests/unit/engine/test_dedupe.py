"""Optional de-duplication of repeated Snowplow event ids per entity (SIGNALS_DEDUPE_EVENT_IDS)."""

from __future__ import annotations

import pytest

from signals_stream.definitions import AttributeGroup
from signals_stream.engine import Catalog, apply_record, read_group
from signals_stream.engine.row import EntityRow, decode_row, encode_row
from signals_stream.events.parse import parse_record
from signals_stream.routing import route_event
from tests.datafiles import DATA_DIR

T0 = 1_800_000_000_000
GROUP = AttributeGroup.parse(
    {
        "name": "g",
        "version": 1,
        "attribute_key": {"name": "domain_userid"},
        "is_published": True,
        "attributes": [{"name": "events", "type": "int32", "events": [], "aggregation": "counter"}],
    }
)


def _projections() -> list[bytes]:
    catalog = Catalog.build([GROUP])
    lines = (DATA_DIR / "kafka-live-viewer-profiles" / "micro.1.tsv").read_bytes().split(b"\n")
    return [
        route_event(parse_record(line), catalog.routing_plan(), partition=0, offset=0)[0][4]
        for line in lines[:5]
    ]


@pytest.mark.parametrize(("dedupe_ids", "expected"), [(0, 10), (100, 5)])
def test_an_event_delivered_twice_upstream_counts_once_with_dedupe(
    dedupe_ids: int, expected: int
) -> None:
    catalog = Catalog.build([GROUP])
    projections = _projections()
    # The pipeline re-sent the same five events: new input offsets, same event ids.
    sourced = [(0, offset, p) for offset, p in enumerate(projections + projections)]
    row = EntityRow()
    done = apply_record(row, catalog, "domain_userid", sourced, now_ms=T0, dedupe_ids=dedupe_ids)
    assert done.replays == 0
    assert done.duplicates == (5 if dedupe_ids else 0)
    assert read_group(row, catalog.group("g"), T0)["events"] == expected


def test_the_remembered_ids_are_capped_and_survive_the_row_codec() -> None:
    catalog = Catalog.build([GROUP])
    projections = _projections()
    row = EntityRow()
    apply_record(
        row, catalog, "domain_userid", [(0, i, p) for i, p in enumerate(projections)],
        now_ms=T0, dedupe_ids=3,
    )  # fmt: skip
    assert len(row.recent_ids) == 3
    restored = decode_row(encode_row(row))
    assert restored.recent_ids == row.recent_ids
    # The oldest two ids were forgotten: seen again, they count.
    done = apply_record(
        restored, catalog, "domain_userid", [(0, 10 + i, p) for i, p in enumerate(projections)],
        now_ms=T0, dedupe_ids=3,
    )  # fmt: skip
    assert (done.applied, done.duplicates) == (2, 3)
