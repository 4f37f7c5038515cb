"""``step_row(decoded=...)``: the rows of one batch share decoded projections, so an event
routed to two keys is decoded once, and the rows come out as when each decodes its own."""

from __future__ import annotations

from typing import Any

from signals_stream.engine import SourcedEvent, step_row
from signals_stream.engine.row import decode_row
from signals_stream.events.event import Event
from tests.unit.definitions.helpers import make_event
from tests.unit.engine.groups import OWNER, build_catalog

NOW_MS = 1_710_498_030_000


def _group(name: str, key: str) -> dict[str, Any]:
    return {
        "name": name,
        "version": 1,
        "owner": OWNER,
        "attribute_key": {"name": key},
        "is_published": True,
        "attributes": [
            {"name": "views", "type": "int32", "aggregation": "counter"},
            {
                "name": "last_path",
                "type": "string",
                "aggregation": "last",
                "property": {"type": "atomic", "name": "page_urlpath"},
            },
        ],
    }


def test_one_decode_per_projection_for_both_keys_and_the_same_rows() -> None:
    catalog = build_catalog(
        _group("users", "domain_userid"), _group("sessions", "domain_sessionid")
    )
    plan = catalog.routing_plan()
    events = [
        make_event(domain_userid="u1", domain_sessionid="s1", event="page_view", page_urlpath=p)
        for p in ("/a", "/b", "/c")
    ]
    projections = [e.project(plan.projection) for e in events]
    # each key's entity events carry their own copies of the bytes (as after the hop)
    sourced = {
        key: [SourcedEvent(0, i, bytes(bytearray(p))) for i, p in enumerate(projections)]
        for key in ("domain_userid", "domain_sessionid")
    }
    decoded: dict[bytes, Event] = {}
    shared = {
        key: step_row(None, catalog, key, b"x", items, NOW_MS, decoded=decoded)
        for key, items in sourced.items()
    }
    assert len(decoded) == 3  # three events, two keys: three decodes
    for key, items in sourced.items():
        alone = step_row(None, catalog, key, b"x", items, NOW_MS)
        assert shared[key].row == alone.row
        group = catalog.group("users" if key == "domain_userid" else "sessions")
        values = {a.name: decode_row(alone.row).attrs[a.slot.id][0] for a in group.attributes}
        assert values["views"] == 3
