"""Agentic contexts as dataset columns (``agentic_contexts``), through the log build's pure
core: every session's context at anchors on each of its events (and after its end) equals the
buffer worked out from the CSV rows counting before the anchor (``workload.expected_buffers``:
plain Python), with every later event poisoned no row changes, and the SQL path refuses the
field naming it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from signals_stream.datasets.bundle import build_bundle
from signals_stream.datasets.models import DatasetBundleRequest
from signals_stream.engine.point_in_time import Anchor, KeyedEvent, effective_ms, values_at_anchors
from signals_stream.errors import DefinitionError
from signals_stream.events.event import Event
from signals_stream.events.parse import parse_record
from signals_stream.history.dataset_log import plan_of
from tests.dbt_seeds import ECOMMERCE_SEED, row_to_tsv, seed_rows
from tests.integration.history_data import event_ms
from tests.unit.engine.test_event_buffer import SESSION_LOG
from tests.unit.engine.workload import expected_buffers, seed_facts

_LOG = {k: v for k, v in SESSION_LOG.items() if k != "is_published"}
_GROUP = {
    "name": "shop_session", "version": 1, "attribute_key": {"name": "domain_sessionid"},
    "attributes": [{"name": "actions", "type": "int64", "aggregation": "counter", "events": []}],
}  # fmt: skip
_USERS = {"name": "shop_user", "version": 1, "attribute_key": {"name": "domain_userid"},
          "attributes": [{"name": "user_actions", "type": "int64", "aggregation": "counter",
                          "events": []}]}  # fmt: skip


def _request(
    fmt: str = "json",
    groups: tuple[dict[str, Any], ...] = (_USERS,),
    logs: tuple[dict[str, Any], ...] = (_LOG,),
) -> DatasetBundleRequest:
    return DatasetBundleRequest.parse(
        {
            "anchors": {"mode": "user_supplied", "source": {"table": "anchors"}},
            "attributes": {"attribute_groups": list(groups)},
            "agentic_contexts": list(logs),
            "agentic_context_format": fmt,
        }
    )


def _selected(identity: tuple[str, str, str]) -> bool:
    return identity[1] == "snowplow_ecommerce_action" and identity[2].startswith("1-")


def _events(poison_from: int | None = None, session: str | None = None) -> list[tuple[str, Event]]:
    """(session, event) of every seed row with a session (or of ``session``); with
    ``poison_from``, every event from then on (effective time) has a poisoned page path,
    action type and product."""
    out = []
    for row in seed_rows(ECOMMERCE_SEED):
        if not row["domain_sessionid"] or session not in (None, row["domain_sessionid"]):
            continue
        event = parse_record(row_to_tsv(row).encode())
        if poison_from is not None and effective_ms(event) >= poison_from:
            poisoned = dict(row, page_urlpath="/POISON", page_url="http://x/POISON")
            for column in poisoned:
                if column.startswith(("unstruct_event_", "contexts_")) and poisoned[column]:
                    poisoned[column] = _poison_json(poisoned[column])
            event = parse_record(row_to_tsv(poisoned).encode())
        out.append((row["domain_sessionid"], event))
    return out


def _poison_json(text: str) -> str:
    value = json.loads(text)

    def walk(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: ("POISON" if k in ("type", "name") else walk(x)) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    return json.dumps(walk(value))


def _values(
    request: Any, events: list[tuple[str, Event]], anchors: list[tuple[str, int]]
) -> Iterator[tuple[tuple[str, int], dict[str, Any]]]:
    plan = plan_of(request)
    keyed = sorted(
        (KeyedEvent(s, effective_ms(e), e.event_id, e) for s, e in events),
        key=lambda k: (k.entity_id, k.effective_ms, k.event_id),
    )
    ordered = sorted(anchors)
    found = values_at_anchors(
        plan.catalog, "domain_sessionid", plan.groups.get("domain_sessionid", []), keyed,
        (Anchor(s, t, i) for i, (s, t) in enumerate(ordered)),
        logs=plan.logs["domain_sessionid"], context_format=request.agentic_context_format,
    )  # fmt: skip
    for got in found:
        yield ordered[got.row], got.values


def _anchors() -> list[tuple[str, int]]:
    """At every event time of each session, and 1 h after its last event."""
    times: dict[str, list[int]] = {}
    for row in seed_rows(ECOMMERCE_SEED):
        if row["domain_sessionid"]:
            t = event_ms(row["derived_tstamp"] or row["collector_tstamp"])
            times.setdefault(row["domain_sessionid"], []).append(t)
    return sorted({(s, t) for s, ts in times.items() for t in (*ts, max(ts) + 3_600_000)})


def _expected(session: str, at: int) -> tuple[list[dict[str, Any]], int]:
    """(the buffer's events, started_at_ms) from the CSV rows counting for ``at``."""
    rows = seed_rows(ECOMMERCE_SEED)
    facts = []
    for fact in seed_facts():
        row = rows[fact.index]
        collector = event_ms(row["collector_tstamp"])
        if fact.domain_sessionid == session and collector < at and fact.time_ms < at:
            facts.append(fact)
    buffers = expected_buffers(facts, "domain_sessionid", lambda f: _selected(f.identity), 10, 600)
    started = min((f.time_ms for f in facts), default=0)
    return buffers.get(session, []), started


def test_each_anchor_gets_the_sessions_context_as_of_its_time() -> None:
    anchors = _anchors()
    non_empty = 0
    for (session, at), values in _values(_request(), _events(), anchors):
        body = json.loads(values["session_ctx"])
        events, started = _expected(session, at)
        assert body["events"] == events, (session, at)
        assert body["started_at_ms"] == started
        assert (body["name"], body["identifier"]) == ("session_ctx", session)
        non_empty += bool(events)
    assert len(anchors) > 800 and non_empty > 500


def test_the_narrative_format_and_the_columns() -> None:
    request = _request("narrative", groups=(_GROUP, _USERS))
    plan = plan_of(request)
    assert plan.columns == ["actions", "session_ctx", "user_actions"]
    session, at = _anchors()[40]
    ((_, values),) = list(_values(request, _events(), [(session, at)]))
    text = values["session_ctx"]
    events, _ = _expected(session, at)
    assert text.startswith("[START CONTEXT]\nYou help shoppers.\n") and events
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 1 + len(events)  # the header, then one row per entry
    assert values["actions"] == sum(
        1 for r in seed_rows(ECOMMERCE_SEED)
        if r["domain_sessionid"] == session
        and event_ms(r["collector_tstamp"]) < at
        and event_ms(r["derived_tstamp"] or r["collector_tstamp"]) < at
    )  # fmt: skip


def test_no_leakage_with_every_later_event_poisoned() -> None:
    anchors = _anchors()[::9]
    clean = dict(_values(_request(), _events(), anchors))
    changed = 0
    for anchor in anchors:
        later = _events(poison_from=anchor[1], session=anchor[0])
        poisoned = dict(_values(_request(), later, [anchor]))
        assert poisoned[anchor] == clean[anchor], anchor
    # The poison is visible once it is before the anchor: it is not a no-op.
    late = [(s, t + 3_600_000) for s, t in anchors]
    for _anchor, values in _values(_request(), _events(poison_from=0), late):
        changed += "POISON" in values["session_ctx"]
    assert changed > len(anchors) // 2


def test_names_and_the_sql_path() -> None:
    for name in ("user_actions", "domain_sessionid", "anchor_ts"):
        with pytest.raises(DefinitionError, match=rf"agentic_contexts\.0: '{name}' is also"):
            plan_of(_request(logs=({**_LOG, "name": name},)))
    with pytest.raises(DefinitionError, match=r"agentic_contexts\.1: 'session_ctx' is given"):
        _request(logs=(_LOG, _LOG))
    with pytest.raises(DefinitionError, match="agentic_contexts: .*--from log"):
        build_bundle(_request(), None, dialect="duckdb", output=None)  # type: ignore[arg-type]
