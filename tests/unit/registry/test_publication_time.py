"""State written before a group's current publication is ignored and then replaced: deleting
or unpublishing a group and publishing it again starts from nothing (Signals: attributes count
from publication), while a new version sharing a definition keeps counting."""

from __future__ import annotations

from signals_stream.definitions import AttributeGroup
from signals_stream.engine import Catalog, fold_events, prune_row, read_group
from signals_stream.engine.row import EntityRow
from tests.unit.definitions.helpers import make_event

GROUP = AttributeGroup.parse(
    {
        "name": "visits",
        "version": 1,
        "attribute_key": {"name": "domain_userid"},
        "is_published": True,
        "attributes": [
            {"name": "events", "type": "int32", "events": [], "aggregation": "counter"},
            {
                "name": "last_page",
                "type": "string",
                "events": [],
                "aggregation": "last",
                "property": {"type": "atomic", "name": "page_url"},
            },
        ],
    }
)
EVENT = make_event(domain_userid="u1", page_url="https://shop.example/a")


def catalog(published_at_ms: int) -> Catalog:
    return Catalog.build([GROUP], published_at_ms={("visits", 1): published_at_ms})


def fold(row: EntityRow, cat: Catalog, now_ms: int) -> None:
    fold_events(row, cat.programs["domain_userid"], [EVENT], now_ms)


def test_state_from_an_earlier_publication_reads_as_nothing_and_restarts() -> None:
    row = EntityRow()
    first = catalog(published_at_ms=1_000)
    fold(row, first, now_ms=2_000)
    fold(row, first, now_ms=3_000)
    assert read_group(row, first.group("visits"), 4_000)["events"] == 2

    republished = catalog(published_at_ms=5_000)
    assert read_group(row, republished.group("visits"), 6_000) == {"events": 0, "last_page": None}
    fold(row, republished, now_ms=7_000)
    assert read_group(row, republished.group("visits"), 8_000)["events"] == 1


def test_stale_state_is_reclaimed_without_new_events() -> None:
    row = EntityRow()
    fold(row, catalog(published_at_ms=1_000), now_ms=2_000)
    assert prune_row(row, catalog(published_at_ms=5_000).programs["domain_userid"], 6_000)
    assert row.attrs == {}


def test_the_same_definition_published_meanwhile_keeps_the_state() -> None:
    row = EntityRow()
    fold(row, catalog(published_at_ms=1_000), now_ms=2_000)
    v2 = GROUP.model_copy(update={"version": 2})
    both = Catalog.build([GROUP, v2], published_at_ms={("visits", 1): 1_000, ("visits", 2): 9_000})
    assert read_group(row, both.group("visits", 2), 10_000)["events"] == 1
