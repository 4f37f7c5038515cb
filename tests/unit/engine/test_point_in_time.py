"""Point-in-time values over the real ecommerce events, against values worked out from the CSV
rows in plain Python (filters, counts, maxima), and with every event after an anchor poisoned.

The boundary rule: an event counts for an anchor at T iff collector_tstamp < T and its event
time (derived_tstamp, else collector_tstamp) < T; rolling windows end at T (30 s buckets of a
PT15M window count when their start is in (T - 15 min - 30 s, T]).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from signals_stream.definitions import AttributeGroup as Group
from signals_stream.engine.catalog import Catalog
from signals_stream.engine.point_in_time import (
    Anchor,
    KeyedEvent,
    effective_ms,
    values_at_anchors,
)
from signals_stream.events.parse import parse_record
from tests.dbt_seeds import ECOMMERCE_SEED, row_to_tsv, seed_event_id, seed_rows
from tests.integration.history_data import ECOM, event_ms
from tests.integration.test_history_group_test import GROUP as HISTORY_GROUP

CART = f"contexts_{ECOM.replace('.', '_')}_cart_1_0_0"
PERIOD_MS = 15 * 60_000
WIDTH_MS = 30_000
_KEPT = ("events_seen", "product_x_views", "last_page", "cart_max")  # test()'s, all lifetime
GROUP = HISTORY_GROUP.model_copy(
    update={
        "name": "pit",
        "attributes": [
            *(a for a in HISTORY_GROUP.attributes or () if a.name in _KEPT),
            *(
                a.model_copy(update={"period": timedelta(minutes=15)})
                for a in HISTORY_GROUP.attributes or ()
                if a.name == "recent_events"
            ),
        ],
    }
)


def _catalog() -> Catalog:
    group = Group.parse(GROUP.model_dump(mode="json", by_alias=True))
    return Catalog.build([group.model_copy(update={"is_published": True})])


def _times(row: Mapping[str, str]) -> tuple[int, int]:
    c = event_ms(row["collector_tstamp"])
    return c, event_ms(row["derived_tstamp"] or row["collector_tstamp"])


def _expected(rows: Iterable[Mapping[str, str]], t: int) -> dict[str, Any]:
    """The group's values at ``t`` from the rows counting for it, in plain Python."""
    seen = [r for r in rows if _times(r)[0] < t and _times(r)[1] < t]
    pages = [(_times(r)[1], seed_event_id(r["event_id"]), r["page_url"]) for r in seen]
    carts = [
        float(c[0]["total_value"])
        for r in seen
        if (c := json.loads(r[CART] or "[]")) and c[0].get("total_value") is not None
    ]
    return {
        "events_seen": len(seen),
        "product_x_views": sum(r["page_url"].endswith("/productX") for r in seen),
        "last_page": max((p for p in pages if p[2]), default=(0, "", None))[2],
        "cart_max": max(carts, default=None),
        "recent_events": sum(
            _times(r)[1] - _times(r)[1] % WIDTH_MS > t - PERIOD_MS - WIDTH_MS for r in seen
        ),
    }


def _keyed(rows: Iterable[Mapping[str, str]]) -> list[KeyedEvent]:
    events = []
    for row in rows:
        event = parse_record(row_to_tsv(row).encode())
        events.append(KeyedEvent(row["domain_userid"], effective_ms(event), event.event_id, event))
    return sorted(events, key=lambda e: (e.entity_id, e.effective_ms, e.event_id))


def _by_user() -> dict[str, list[dict[str, str]]]:
    users: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in seed_rows(ECOMMERCE_SEED):
        if row["domain_userid"]:
            users[row["domain_userid"]].append(dict(row))
    return users


def _anchors(users: Mapping[str, list[dict[str, str]]]) -> list[Anchor]:
    """Per user, at each event's collector time (the event itself does not count), 1 ms after
    it (it does), and 10 minutes after it (the 15-minute window still holds it or not)."""
    moments = []
    for user, rows in users.items():
        for row in rows[:12]:
            c, _ = _times(row)
            moments += [(user, c), (user, c + 1), (user, c + 600_000), (user, c + 7_200_000)]
    moments.sort()
    return [Anchor(user, t, i) for i, (user, t) in enumerate(moments)]


def _run(rows: list[KeyedEvent], anchors: list[Anchor]) -> dict[int, dict[str, Any]]:
    catalog = _catalog()
    group = catalog.group("pit", 1)
    found = values_at_anchors(catalog, "domain_userid", [group], rows, anchors)
    return {v.row: v.values for v in found}


def test_values_at_anchors_equal_the_rows_before_them_worked_out_from_the_csv() -> None:
    users = _by_user()
    anchors = _anchors(users)
    got = _run(_keyed(r for rows in users.values() for r in rows), anchors)
    assert len(got) == len(anchors) > 1000
    wrong = {
        a: got[a.row] for a in anchors if got[a.row] != _expected(users[a.entity_id], a.anchor_ms)
    }
    assert not wrong, list(wrong.items())[:3]
    # The anchors are not trivial: counts move between an event's time and 1 ms after it,
    # and the rolling window forgets.
    assert {got[a.row]["events_seen"] for a in anchors} != {0}
    assert any(v["recent_events"] < v["events_seen"] for v in got.values())
    assert any(v["cart_max"] is not None for v in got.values())


def _poisoned(row: dict[str, str]) -> dict[str, str]:
    out = dict(row)
    out["page_url"] = "https://poison.example/productX"
    out[CART] = json.dumps([{"cart_id": "p", "currency": "USD", "total_value": 1e12}])
    return out


def test_no_leakage_every_event_after_its_anchor_poisoned_changes_no_row() -> None:
    users = _by_user()
    anchors = [a for a in _anchors(users) if a.row % 4 == 1]  # one moment per event, 1 ms after
    clean = _run(_keyed(r for rows in users.values() for r in rows), anchors)
    cut = {}  # one cut per user: its earliest anchor; every anchor of a user at or before it
    for anchor in anchors:
        cut.setdefault(anchor.entity_id, anchor.anchor_ms)
    first = [a for a in anchors if a.anchor_ms == cut[a.entity_id]]
    rows: list[dict[str, str]] = []
    late = 0
    for user, own in users.items():
        t = cut.get(user)
        for row in own:
            c, e = _times(row)
            rows.append(_poisoned(row) if t is not None and (c >= t or e >= t) else row)
        if t is not None:  # arrives an hour after the anchor, dated a minute before it
            extra = _poisoned(own[0])
            extra["event_id"] = f"00000000-0000-4000-8000-{late:012d}"
            extra["derived_tstamp"] = _stamp(t - 60_000)
            extra["collector_tstamp"] = _stamp(t + 3_600_000)
            rows.append(extra)
            ahead = _poisoned(own[0])  # received before the anchor, dated after it
            ahead["event_id"] = f"00000000-0000-4000-9000-{late:012d}"
            ahead["derived_tstamp"] = _stamp(t + 60_000)
            ahead["collector_tstamp"] = _stamp(t - 60_000)
            rows.append(ahead)
            late += 1
    dirty = _run(_keyed(rows), first)
    assert late > 10
    assert {a.row: dirty[a.row] for a in first} == {a.row: clean[a.row] for a in first}
    # The poison is there: read later, the rows take it.
    later = [Anchor(a.entity_id, a.anchor_ms + 86_400_000 * 400, a.row) for a in first]
    assert any(v["cart_max"] == 1e12 for v in _run(_keyed(rows), later).values())


def _stamp(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
