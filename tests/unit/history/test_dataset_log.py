"""Event anchors found in the log: events in the span matching the criteria, at their event
time, the earliest ``max_anchors_per_session`` per session; counted from the CSV rows."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from signals_stream.datasets.models import DatasetBundleRequest, EventAnchors
from signals_stream.events.parse import parse_record
from signals_stream.history.dataset_log import _EventAnchorFinder, plan_of
from signals_stream.history.spill import Spill
from tests.dbt_seeds import ECOMMERCE_SEED, row_to_tsv, seed_rows
from tests.integration.history_data import event_ms
from tests.integration.test_history_group_test import GROUP


def _request(cap: int | None) -> DatasetBundleRequest:
    anchors = {
        "mode": "event",
        "criteria": {"all": [{"property": {"type": "atomic", "name": "event_name"},
                              "operator": "=", "value": "snowplow_ecommerce_action"}]},
        "training_span": {"start_time": "2022-11-01T00:00:00Z", "end_time": "2022-12-01T00:00:00Z"},
    }  # fmt: skip
    if cap is not None:
        anchors["max_anchors_per_session"] = cap
    body = {
        "anchors": anchors,
        "attributes": {"attribute_groups": [GROUP.model_dump(mode="json", by_alias=True)]},
    }
    return DatasetBundleRequest.parse(body)


def _found(cap: int | None, tmp_path: Path) -> list[tuple[str, int]]:
    request = _request(cap)
    assert isinstance(request.anchors, EventAnchors)
    finder = _EventAnchorFinder(request.anchors, plan_of(request).keys, Spill(tmp_path))
    for row in seed_rows(ECOMMERCE_SEED):
        finder.offer(parse_record(row_to_tsv(row).encode()))
    return sorted((ids[1] or "", t) for ids, t, _ in finder.anchors())  # (session, user)


def test_event_anchors_are_the_matching_events_of_the_span_capped_per_session(
    tmp_path: Path,
) -> None:
    lo, hi = event_ms("2022-11-01 00:00:00+00:00"), event_ms("2022-12-01 00:00:00+00:00")
    by_session: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
    for row in seed_rows(ECOMMERCE_SEED):
        t = event_ms(row["derived_tstamp"] or row["collector_tstamp"])
        # anchors are events of a session (as in the SQL): none without a domain_sessionid
        if (
            row["event_name"] == "snowplow_ecommerce_action"
            and lo <= t < hi
            and row["domain_sessionid"]
        ):
            by_session[row["domain_sessionid"]].append((t, row["event_id"], row["domain_userid"]))
    every = sorted((u, t) for rows in by_session.values() for t, _, u in rows)
    first = sorted((u, t) for rows in by_session.values() for t, _, u in sorted(rows)[:1])
    assert len(every) > len(first) > 5
    assert _found(None, tmp_path) == every
    assert _found(1, tmp_path) == first
