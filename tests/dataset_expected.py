"""Training-dataset rows worked out in plain Python from the typed ecommerce CSV, for the
dataset tests: no SQL, no engine code. The rules are the ones ``docs/semantics.md`` states
("Training datasets"), written out again here:

* an event counts for an anchor at T iff its collector time < T and its event time
  (derived, else collector) < T;
* a rolling 30-minute period at T holds the events whose 1-minute bucket start b has
  ``T - 31 min < b <= T``;
* session anchors: a session's events strictly before its first goal, after ``min_events``
  earlier ones; label 1 if the session reaches the goal.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["ACTION", "CART", "Event", "read_events", "session_anchors", "values_at"]

ACTION = "unstruct_event_com_snowplowanalytics_snowplow_ecommerce_snowplow_ecommerce_action_1_0_0"
CART = "contexts_com_snowplowanalytics_snowplow_ecommerce_cart_1_0_0"
_MINUTE = 60_000


@dataclass(frozen=True)
class Event:
    event_id: str
    session: str
    user: str
    t: int  # event time, ms
    collector: int  # ms
    action: str | None
    cart_value: float | None


def _ms(text: str) -> int | None:
    if not text:
        return None
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


def _cart(text: str) -> float | None:
    items = json.loads(text) if text else []
    values = [float(i["total_value"]) for i in items if i.get("total_value") is not None]
    return max(values) if values else None


def read_events(path: Path) -> list[Event]:
    """The events of the typed CSV (``session`` is empty for events without one)."""
    out = []
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if not row["event_id"]:
                continue
            collector = _ms(row["collector_tstamp"])
            assert collector is not None
            derived = _ms(row["derived_tstamp"])
            action = json.loads(row[ACTION]).get("type") if row[ACTION] else None
            out.append(
                Event(
                    row["event_id"],
                    row["domain_sessionid"],
                    row["domain_userid"],
                    collector if derived is None else derived,
                    collector,
                    action,
                    _cart(row[CART]),
                )
            )
    return out


def session_anchors(
    events: list[Event], *, goal: str, min_events: int, start: int, end: int
) -> list[tuple[Event, int]]:
    """(anchor event, label) for session anchors with no exclusion, cap or sampling."""
    by_session: dict[str, list[Event]] = {}
    for e in events:
        if e.session and start <= e.t < end:
            by_session.setdefault(e.session, []).append(e)
    anchors = []
    for evs in by_session.values():
        evs.sort(key=lambda e: (e.t, e.event_id))
        goals = [e.t for e in evs if e.action == goal]
        first_goal = min(goals) if goals else None
        for index, e in enumerate(evs):
            if index < min_events or (first_goal is not None and e.t >= first_goal):
                continue
            anchors.append((e, 0 if first_goal is None else 1))
    return anchors


def counts_for(e: Event, at: int) -> bool:
    return e.collector < at and e.t < at


def in_30_minutes(e: Event, at: int) -> bool:
    bucket = e.t - e.t % _MINUTE
    return at - 31 * _MINUTE < bucket <= at


def values_at(events: list[Event], session: str, user: str, at: int) -> dict[str, Any]:
    """The attributes of the tests' groups as of ``at``."""
    mine = [e for e in events if e.session == session and counts_for(e, at)]
    recent = [e for e in mine if in_30_minutes(e, at)]
    carts = [e.cart_value for e in recent if e.cart_value is not None]
    user_events = [e for e in events if user and e.user == user and counts_for(e, at)]
    return {
        "product_views_30m": sum(1 for e in recent if e.action == "product_view"),
        "cart_value_30m": max(carts) if carts else None,
        "user_events": len(user_events),
    }


def md5_order(seed: int, value: str) -> str:
    return hashlib.md5(f"{seed}:{value}".encode()).hexdigest()


def expected_session_rows(events: list[Event], *, start: int, end: int) -> list[tuple[Any, ...]]:
    """The tests' session anchors (goal: a transaction, ``min_events`` 1, no sampling), one
    ``(session, anchor ms, label, product_views_30m, cart_value_30m, user_events)`` each."""
    rows = []
    for event, label in session_anchors(
        events, goal="transaction", min_events=1, start=start, end=end
    ):
        values = values_at(events, event.session, event.user, event.t)
        rows.append((event.session, event.t, label, *values.values()))
    return sorted(rows, key=repr)


def sampled_session_anchors(
    events: list[Event],
    *,
    goal: str,
    start: int,
    end: int,
    min_events: int,
    cap: int | None,
    ratio: float | None,
    seed: int,
    excluded: frozenset[str] = frozenset(),
    names: dict[str, str] | None = None,
) -> list[tuple[str, int, str, int]]:
    """``(session, anchor ms, event id, label)`` of session anchors with every option, in
    plain Python from the rules of ``docs/semantics.md``: ``names`` maps an event id to its
    event name (for ``excluded``). Sorted."""
    names = names or {}
    sessions: dict[str, list[Event]] = {}
    for e in events:
        if e.session and start <= e.t < end:
            sessions.setdefault(e.session, []).append(e)
    positives: list[tuple[str, int, str, int]] = []
    negatives: list[tuple[str, int, str, int]] = []
    for session, evs in sessions.items():
        goal_times = [e.t for e in evs if e.action == goal]
        first_goal = min(goal_times) if goal_times else None
        kept = sorted(
            (e for e in evs if names.get(e.event_id) not in excluded),
            key=lambda e: (e.t, e.event_id),
        )
        chosen = [
            e
            for n, e in enumerate(kept)
            if n >= min_events and (first_goal is None or e.t < first_goal)
        ]
        if cap is not None:
            chosen = sorted(chosen, key=lambda e: (md5_order(seed, e.event_id), e.event_id))
            chosen = chosen[:cap]
        label = 0 if first_goal is None else 1
        for e in chosen:
            (positives if label else negatives).append((session, e.t, e.event_id, label))
    if ratio is not None:
        negatives.sort(key=lambda a: (md5_order(seed, a[0]), a[1], a[2]))
        negatives = negatives[: int(ratio * len(positives) // 1)]
    return sorted(positives + negatives)
