"""Agentic-context buffers on the ecommerce seed, against expectations read from the CSV.

The engine side runs the real path (``workload.replay``: parse, route, project, apply). The
expected buffers are built from ``seed_facts`` (plain ``csv``/``json``): the selected rows of
each entity, ordered by (event time, event id), cut by age relative to the newest, then by
count. The formats are checked byte for byte against hand-written text.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from signals_stream.definitions import BUILTIN_KEYS
from signals_stream.definitions.event_logs import EventLog, compile_event_log
from signals_stream.engine import Catalog
from signals_stream.engine.event_buffer import (
    MAX_BUFFER_BYTES,
    MAX_VALUE_CHARS,
    narrative,
    read_context,
)
from signals_stream.engine.row import EntityRow, decode_row, encode_row
from signals_stream.errors import DefinitionError
from tests.unit.engine.workload import (
    T0_MS,
    SeedFact,
    ecommerce_lines,
    expected_buffers,
    replay,
    route_lines,
    seed_facts,
)

_ECOM = "com.snowplowanalytics.snowplow.ecommerce"
_PROPS = [
    {"type": "atomic", "name": "event_name"},
    {"type": "atomic", "name": "page_urlpath"},
    {
        "type": "event",
        "vendor": _ECOM,
        "name": "snowplow_ecommerce_action",
        "major_version": 1,
        "path": "type",
    },
    {
        "type": "entity",
        "vendor": _ECOM,
        "name": "product",
        "major_version": 1,
        "path": "$.name",
        "output_name": "product",
    },
]
SESSION_LOG = {
    "name": "session_ctx",
    "attribute_key": {"name": "domain_sessionid"},
    "prompt": "You help shoppers.",
    # Every ecommerce action of any 1-x-x version (the seed has 1-0-0 and 1-0-1).
    "events": [
        {"event": {"name": "snowplow_ecommerce_action", "major_version": 1}, "properties": _PROPS}
    ],
    "max_events": 10,
    "max_age_seconds": 600,
    "is_published": True,
}
USER_LOG = {
    "name": "user_ctx",
    "attribute_key": {"name": "domain_userid"},
    "events": [
        {"event": {"vendor": "ecommerce.tracking", "version": "1-0-0"}, "properties": _PROPS}
    ],
    "max_events": 100,
    "max_age_seconds": 3600,
    "is_published": True,
}


def _catalog(*bodies: dict[str, Any]) -> Catalog:
    return Catalog.build((), event_logs=[EventLog.parse(b) for b in bodies])


def _session_selected(f: SeedFact) -> bool:
    return f.identity[1] == "snowplow_ecommerce_action" and f.identity[2].startswith("1-")


def _user_selected(f: SeedFact) -> bool:
    return f.identity[0] == "ecommerce.tracking" and f.identity[2] == "1-0-0"


def _buffers(run: Any, log_name: str, key: str) -> dict[str, list[dict[str, Any]]]:
    log = run.catalog.event_log(log_name)
    out = {}
    for entity in run.entities(key):
        context = read_context(run.row(key, entity), log, entity, T0_MS)
        if context.entries:
            out[entity] = context.to_json()["events"]
    return out


def test_session_and_user_buffers_match_the_csv() -> None:
    run = replay(ecommerce_lines(), _catalog(SESSION_LOG, USER_LOG))
    facts = list(seed_facts())
    session = expected_buffers(facts, "domain_sessionid", _session_selected, 10, 600)
    user = expected_buffers(facts, "domain_userid", _user_selected, 100, 3600)
    # Both cuts bite: fewer entries than selected events, and some sessions keep < 10.
    assert 200 < sum(map(len, session.values())) < sum(map(_session_selected, facts))
    assert any(len(v) < 10 for v in session.values())
    assert sum(map(len, user.values())) < sum(map(_user_selected, facts))
    assert _buffers(run, "session_ctx", "domain_sessionid") == session
    assert _buffers(run, "user_ctx", "domain_userid") == user


def test_a_custom_key_keeps_a_buffer_per_shop_user_across_sessions() -> None:
    """Beyond Signals v1: any registered key, here the shop's user id from the ecommerce
    ``user`` entity; the limits and cuts are the same."""
    from signals_stream.definitions import AttributeKey
    from tests.unit.engine.groups import ECOM_USER_KEY

    body = {**USER_LOG, "name": "shop_user_ctx", "attribute_key": {"name": "ecom_user_id"}}
    catalog = Catalog.build(
        (), [AttributeKey.parse(ECOM_USER_KEY)], event_logs=[EventLog.parse(body)]
    )
    run = replay(ecommerce_lines(), catalog)
    facts = list(seed_facts())
    expected = expected_buffers(facts, "ecom_user", _user_selected, 100, 3600)
    sessions = {f.domain_sessionid for f in facts if f.ecom_user and _user_selected(f)}
    assert expected and len(sessions) > 10  # the seed's shop users act in 16 sessions
    assert _buffers(run, "shop_user_ctx", "ecom_user_id") == expected


def test_arrival_order_and_replays_do_not_change_buffers() -> None:
    catalog = _catalog(SESSION_LOG, USER_LOG)
    in_order = replay(ecommerce_lines(), catalog)
    lines = list(ecommerce_lines())
    random.Random(7).shuffle(lines)  # events arrive far from event-time order
    late = replay(lines, catalog)
    for log, key in (("session_ctx", "domain_sessionid"), ("user_ctx", "domain_userid")):
        assert _buffers(late, log, key) == _buffers(in_order, log, key)
    before = dict(late.store)
    late.apply(route_lines(lines[:400], catalog), T0_MS)  # re-delivered: skipped by offset
    assert late.store == before


def test_narrative_and_json_byte_for_byte() -> None:
    log = compile_event_log(EventLog.parse(SESSION_LOG), BUILTIN_KEYS["domain_sessionid"])
    row = EntityRow()
    row.first_ms = 1_000_000
    row.logs["session_ctx"] = [
        log.state_id,
        [
            [1_000_000, "a", "page_view", "/", {"event_name": "page_view", "page_urlpath": "/",
             "type": None, "product": None}, 0],
            [1_030_500, "b", "snowplow_ecommerce_action", "/shop",
             {"event_name": "snowplow_ecommerce_action", "page_urlpath": "/shop",
              "type": "add_to_cart", "product": "Red | Hat"}, 0],
            [1_042_000, "c", "snowplow_ecommerce_action", "/shop",
             {"event_name": "snowplow_ecommerce_action", "page_urlpath": "/shop",
              "type": "remove_from_cart", "product": None}, 0],
        ],
    ]  # fmt: skip
    context = read_context(decode_row(encode_row(row)), log, "sess-1", 1_100_000)
    assert narrative(context) == (
        "[START CONTEXT]\n"
        "You help shoppers.\n"
        "\n"
        "69 seconds on the current page. Session started 100 seconds ago. "
        "Based on last 10 recorded events for the last 600 seconds.\n"
        "\n"
        "## Real-time user behaviour\n"
        "\n"
        "| seconds_since_start_of_session | event | url | event_context |\n"
        "|---|---|---|---|\n"
        "| 0 | page_view | / |  |\n"
        "| 30 | snowplow_ecommerce_action | /shop | type=add_to_cart; product=Red \\| Hat |\n"
        "| 42 | snowplow_ecommerce_action | /shop | type=remove_from_cart |\n"
        "[END CONTEXT]"
    )
    body = context.to_json()
    assert body["started_at_ms"] == 1_000_000
    assert body["attribute_key"] == "domain_sessionid"
    assert [e["type"] for e in body["events"]] == [None, "add_to_cart", "remove_from_cart"]
    empty = read_context(None, log, "nobody", 1_100_000).to_json()
    assert empty["events"] == [] and empty["started_at_ms"] == 0


def test_values_and_buffer_are_bounded_in_bytes() -> None:
    from signals_stream.engine.event_buffer import append_events
    from signals_stream.events.parse import parse_tsv

    body = {**USER_LOG, "max_events": 100, "events": [
        {"event": {}, "properties": [{"type": "atomic", "name": "page_url"}]}
    ]}  # fmt: skip
    log = compile_event_log(EventLog.parse(body), BUILTIN_KEYS["domain_userid"])
    line = ecommerce_lines()[0].split("\t")
    from signals_stream.events.fields import FIELD_INDEX

    events = []
    for i in range(100):
        fields = list(line)
        fields[FIELD_INDEX["page_url"]] = "https://x.example/" + "p" * 5000
        fields[FIELD_INDEX["event_id"]] = f"00000000-0000-4000-8000-{i:012d}"
        events.append(parse_tsv("\t".join(fields)))
    row = EntityRow()
    append_events(row, [log], events)
    entries = row.logs["user_ctx"][1]
    assert all(len(e[4]["page_url"]) == MAX_VALUE_CHARS for e in entries)
    assert sum(e[5] for e in entries) <= MAX_BUFFER_BYTES
    assert len(entries) == MAX_BUFFER_BYTES // (MAX_VALUE_CHARS + len('{"page_url":""}'))


def test_events_projected_before_the_log_was_installed_are_not_logged() -> None:
    """At a publish an ingest stage still on the old catalog projects events without the
    log's fields; the owner, already on the new one, must not log them as nulls."""
    from signals_stream.engine.event_buffer import append_events
    from signals_stream.engine.installed import LiveCatalog
    from signals_stream.events.event import Event
    from signals_stream.events.parse import parse_tsv

    catalog = _catalog(SESSION_LOG)
    log = catalog.event_log("session_ctx")
    action = next(
        e for e in map(parse_tsv, ecommerce_lines()) if e.event_name == "snowplow_ecommerce_action"
    )
    old_plan, new_plan = LiveCatalog().plan, LiveCatalog(catalog).plan
    row = EntityRow()
    append_events(row, [log], [Event.from_projection(action.project(old_plan.projection))])
    assert row.logs == {}
    append_events(row, [log], [Event.from_projection(action.project(new_plan.projection))])
    entries = row.logs["session_ctx"][1]
    assert [e[4]["event_name"] for e in entries] == ["snowplow_ecommerce_action"]
    # A log changed since the projection (other selections, another state id) is not fed.
    changed = _catalog({**SESSION_LOG, "max_events": 5, "events": SESSION_LOG["events"] * 2})
    other = changed.event_log("session_ctx")
    assert other.state_id != log.state_id
    row = EntityRow()
    append_events(row, [other], [Event.from_projection(action.project(new_plan.projection))])
    assert row.logs == {}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"max_events": 101}, "max_events"),
        ({"max_age_seconds": 0}, "max_age_seconds"),
        ({"prompt": "x" * 3801}, "prompt"),
        ({"events": []}, "events"),
        ({"events": [{"event": {"version": "1-0-0", "major_version": 1}, "properties": _PROPS}]},
         "major_version"),
        ({"events": [{"event": {"name": "x"}, "properties": [_PROPS[0], _PROPS[0]]}]},
         "output_name"),
        ({"events": [{"event": {"name": "x"}, "properties": [{"type": "atomic", "name": "nope"}]}]},
         "events.0.properties.0"),
    ],
)  # fmt: skip
def test_bad_definitions_name_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(DefinitionError, match=field):
        EventLog.parse({**SESSION_LOG, **change})


def test_captured_sdk_bodies_round_trip() -> None:
    """The SDK's own POST body and the GET answer it parses (nulls echoed) are accepted."""
    import json

    from tests.datafiles import DATA_DIR

    capture = json.loads(
        (DATA_DIR / "signals-sdk-wire-capture" / "capture-signals-py-0.4.10.json").read_text()
    )
    bodies = [
        r["body"]
        for step in capture
        for r in step["requests"]
        if r["path"].startswith("/api/v1/registry/event_logs/") and r["body"]
    ]
    answer = next(s["result"] for s in capture if s["step"] == "get_event_log")
    assert bodies
    for body in bodies:
        assert EventLog.parse(body).to_wire() == {**body, "is_published": False}
    parsed = EventLog.parse(answer)
    assert parsed.is_published and parsed.events[0].properties[0].key == "page_url"
