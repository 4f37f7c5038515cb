"""``KeyProgram.candidates``: selectors decided once per event identity, except event
specifications, which stay per event, and criteria, which always run per event."""

from __future__ import annotations

from typing import Any

from signals_stream.engine import fold_events, read_group
from signals_stream.engine.row import EntityRow
from tests.unit.definitions.helpers import make_event
from tests.unit.engine.groups import OWNER, build_catalog

SP = "com.snowplowanalytics.snowplow"
SPEC = "iglu:com.snowplowanalytics.snowplow/event_specification/jsonschema/1-0-2"
CLICK = "iglu:com.snowplowanalytics.snowplow/link_click/jsonschema/1-0-1"
NOW_MS = 1_710_498_030_000  # 2024-03-15T10:20:30Z, the helper events' collector time


def _counter(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": "int32", "aggregation": "counter", **extra}


GROUP: dict[str, Any] = {
    "name": "picks",
    "version": 1,
    "owner": OWNER,
    "attribute_key": {"name": "domain_userid"},
    "is_published": True,
    "attributes": [
        _counter("page_views", events=[{"vendor": SP, "name": "page_view"}]),
        _counter("spec_42", events=[{"event_specification_id": "spec-42"}]),
        _counter("everything", events=[]),
        _counter(
            "home_views",
            events=[{"vendor": SP, "name": "page_view"}],
            criteria={
                "all": [
                    {
                        "property": {"type": "atomic", "name": "page_urlpath"},
                        "operator": "=",
                        "value": "/",
                    }
                ]
            },
        ),
    ],
}


def _event(*, spec: str | None = None, click: bool = False, path: str = "/x") -> Any:
    entities = [(SPEC, {"id": spec, "name": "tagged"})] if spec else []
    if click:
        return make_event(
            entities=entities,
            unstruct=(CLICK, {"targetUrl": "https://example.com"}),
            domain_userid="u1",
            event="unstruct",
        )
    return make_event(entities=entities, domain_userid="u1", event="page_view", page_urlpath=path)


def test_one_identity_with_and_without_an_event_specification() -> None:
    catalog = build_catalog(GROUP)
    program = catalog.programs["domain_userid"]
    events = [
        _event(path="/"),  # fills the page_view identity's cache entry, without a spec
        _event(spec="spec-42"),  # same identity, but tagged: the spec selector runs again
        _event(spec="spec-7", path="/"),
        _event(click=True),  # the same the other way round: first untagged, then tagged
        _event(click=True, spec="spec-42"),
    ]
    row = EntityRow()
    fold_events(row, program, events, NOW_MS)
    values = read_group(row, catalog.group("picks"), NOW_MS)
    assert values == {"page_views": 3, "spec_42": 2, "everything": 5, "home_views": 2}


def test_candidates_leave_out_slots_whose_identity_selectors_cannot_match() -> None:
    program = build_catalog(GROUP).programs["domain_userid"]
    names = {s.attribute.name: s for s in program.slots}
    assert {s.attribute.name for s in program.candidates(_event(click=True))} == {
        "spec_42",
        "everything",
    }
    assert program.candidates(_event()) == tuple(names.values())


def test_fold_steps_keep_only_the_checks_an_attribute_needs() -> None:
    program = build_catalog(GROUP).programs["domain_userid"]
    steps = {s.slot_id: s for s in program.steps(_event())}
    by_name = {s.attribute.name: steps[s.id] for s in program.slots}
    # the identity already decided page_views; only the spec selector and criteria remain
    assert by_name["page_views"].select is None and by_name["page_views"].criteria is None
    assert by_name["spec_42"].select is not None
    assert by_name["home_views"].criteria is not None
    assert all(s.value is None for s in steps.values())  # counters read no value
    assert {s.slot_id for s in program.steps(_event(click=True))} == {
        s.id for s in program.slots if s.attribute.name in ("spec_42", "everything")
    }
