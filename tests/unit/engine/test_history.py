"""History folded on event time (``engine/history.py``): windows, TTLs and rule edges are
decided at each event's time, where folding the same events at one wall clock decides
otherwise."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from signals_stream.definitions import AttributeGroup
from signals_stream.engine import Catalog, fold_events, read_group
from signals_stream.engine.history import (
    EntityHistory,
    fold_on_event_time,
    in_time_order,
    matches_now,
)
from signals_stream.engine.row import EntityRow
from signals_stream.events.fields import FIELD_INDEX
from signals_stream.events.parse import Event, parse_record
from signals_stream.interventions import RuleIntervention
from tests.datafiles import read_lines

T0 = 1_800_000_000_000
MIN = 60_000
USER = "u-history"

_TEMPLATE = next(
    line.decode().split("\t")
    for line in read_lines("kafka-live-viewer-profiles/micro.1.tsv")
    if line.decode().split("\t")[FIELD_INDEX["event"]] == "page_view"
)


def _stamp(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def page_view(at_ms: int, user: str = USER, app_id: str = "site") -> Event:
    fields = list(_TEMPLATE)
    for name in ("collector_tstamp", "derived_tstamp", "dvce_created_tstamp", "etl_tstamp"):
        fields[FIELD_INDEX[name]] = _stamp(at_ms)
    fields[FIELD_INDEX["dvce_sent_tstamp"]] = _stamp(at_ms)
    fields[FIELD_INDEX["event_id"]] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{user}/{at_ms}"))
    fields[FIELD_INDEX["domain_userid"]] = user
    fields[FIELD_INDEX["app_id"]] = app_id
    return parse_record("\t".join(fields).encode())


GROUP = AttributeGroup.parse(
    {
        "name": "history_unit",
        "version": 1,
        "is_published": True,
        "attribute_key": {"name": "domain_userid"},
        "attributes": [
            {"name": "views", "type": "int64", "events": [], "aggregation": "counter"},
            {
                "name": "views_10m",
                "type": "int64",
                "events": [],
                "aggregation": "counter",
                "period": "PT10M",
            },
            {
                "name": "views_ttl",  # its own slot: a TTL is not part of the definition hash
                "type": "int64",
                "events": [{"name": "page_view"}],
                "aggregation": "counter",
                "ttl": "PT10M",
            },
        ],
    }
)
RULE = RuleIntervention.parse(
    {
        "name": "busy",
        "version": 1,
        "is_published": True,
        "criteria": {
            "all": [{"attribute": "history_unit:views_10m", "operator": ">=", "value": 2}]
        },
    }
)
CATALOG = Catalog.build([GROUP], rules=[RULE])
PUBLISHED = CATALOG.group("history_unit", 1)


def test_a_ttl_is_judged_at_each_events_time() -> None:
    events = [page_view(T0), page_view(T0 + 30 * MIN), page_view(T0 + 31 * MIN)]
    replayed = fold_on_event_time(CATALOG, "domain_userid", USER, events)
    values = read_group(replayed.row, PUBLISHED, T0 + 32 * MIN)
    # The first view's state expired 20 minutes before the second came: it starts again.
    assert values == {"views": 3, "views_10m": 2, "views_ttl": 2}
    # Folded at one wall clock (the live stream reading a backlog) the TTL never passes.
    live = EntityRow()
    fold_events(live, CATALOG.programs["domain_userid"], events, T0 + 32 * MIN)
    assert read_group(live, PUBLISHED, T0 + 32 * MIN)["views_ttl"] == 3


def test_rules_fire_on_every_crossing_in_event_time_whatever_the_input_order() -> None:
    times = [0, 1, 30, 31, 32, 60]  # minutes: crossings after the 2nd and the 4th view
    events = [page_view(T0 + m * MIN) for m in times]
    replayed = fold_on_event_time(CATALOG, "domain_userid", USER, events[::-1], rules=True)
    fired_at = [i["event_time_ms"] for i in replayed.instances]
    assert fired_at == [T0 + 1 * MIN, T0 + 31 * MIN]
    assert {i["name"] for i in replayed.instances} == {"busy"}
    without = fold_on_event_time(CATALOG, "domain_userid", USER, events)
    assert without.instances == [] and without.row.events == len(times)


def test_entity_history_keeps_the_window_the_apps_and_the_ids() -> None:
    history = EntityHistory(
        key=CATALOG.programs["domain_userid"].key,
        projection=CATALOG.routing_plan().projection,
        start_ms=T0,
        end_ms=T0 + 10 * MIN,
        app_ids={"site"},
    )
    kept = [
        history.add(page_view(T0 - 1)),  # before the window
        history.add(page_view(T0, user="a")),
        history.add(page_view(T0 + 2 * MIN, user="b")),
        history.add(page_view(T0 + 3 * MIN, user="a")),
        history.add(page_view(T0 + 4 * MIN, user="c", app_id="other")),
        history.add(page_view(T0 + 10 * MIN + 1, user="c")),  # after it
    ]
    assert kept == [False, True, True, True, False, False]
    assert (history.kept, history.outside, history.seen) == (3, 3, 2)
    assert history.most_recent(1) == ["a"] and history.most_recent(5) == ["a", "b"]
    assert [e.event_time_ms for e in in_time_order(history.events("a"))] == [T0, T0 + 3 * MIN]
    only_b = EntityHistory(
        key=history.key, projection=history.projection, start_ms=T0, end_ms=T0 + MIN, ids={"b"}
    )
    assert not only_b.add(page_view(T0, user="a")) and only_b.add(page_view(T0, user="b"))


def test_matches_now_reads_at_now_and_changed_always_holds() -> None:
    changed = RuleIntervention.parse(
        {
            "name": "moved",
            "version": 1,
            "is_published": True,
            "criteria": {"all": [{"attribute": "history_unit:views", "operator": "changed"}]},
        }
    )
    catalog = Catalog.build([GROUP], rules=[RULE, changed])
    row = fold_on_event_time(catalog, "domain_userid", USER, [page_view(T0), page_view(T0 + MIN)])
    busy, moved = catalog.rules.rules["busy"], catalog.rules.rules["moved"]
    assert matches_now(row.row, catalog, busy, T0 + 2 * MIN)
    assert not matches_now(row.row, catalog, busy, T0 + 30 * MIN)  # the window decayed
    assert matches_now(row.row, catalog, moved, T0 + 30 * MIN)
    assert matches_now(EntityRow(), catalog, moved, T0)  # even a default value
