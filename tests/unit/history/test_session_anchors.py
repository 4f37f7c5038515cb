"""Session anchors found in the log (``_SessionAnchorFinder`` over the parsed seed events)
against anchors worked out from the CSV rows in plain Python (``sampled_session_anchors``),
and against the SQL path's anchors (``dataset build --from warehouse`` in DuckDB) for the same
events: goal, span, exclusions, ``min_events``, the per-session cap and the sampled negatives.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from signals_stream.datasets.command import load_spec
from signals_stream.datasets.models import DatasetBundleRequest, SessionAnchors
from signals_stream.events.parse import parse_record
from signals_stream.history.dataset_log import _SessionAnchorFinder, anchor_columns, plan_of
from tests.dataset_expected import Event, read_events, sampled_session_anchors, session_anchors
from tests.dbt_seeds import ECOMMERCE_SEED, WEB_SEED, row_to_tsv, seed_event_id, seed_rows
from tests.unit.datasets.test_dataset_cli import (
    _SPAN,
    _build,
    _file_rows,
    _is,
    _spec,
    csv_path,  # noqa: F401  (fixtures)
    duckdb_warehouse,  # noqa: F401
)

_START, _END = (int(datetime(y, 1, 1, tzinfo=UTC).timestamp() * 1000) for y in (2022, 2023))
Found = list[tuple[str, int, int]]  # (session, anchor ms, label)


def _found(request: DatasetBundleRequest, seed: str, tmp_path: Path) -> Found:
    spec = request.anchors
    assert isinstance(spec, SessionAnchors)
    plan = plan_of(request)
    finder = _SessionAnchorFinder(spec, request.seed, plan.keys, tmp_path)
    for row in seed_rows(seed):
        finder.offer(parse_record(row_to_tsv(row).encode()))
    columns = anchor_columns(request, plan.keys)
    assert columns[0] == "domain_sessionid"
    return sorted((ids[0] or "", t, label) for ids, t, label in finder.anchors())


def _plain(expected: list[tuple[str, int, str, int]]) -> Found:
    return sorted((s, t, label) for s, t, _, label in expected)


_CASES: dict[str, dict[str, Any]] = {
    "every anchor": {"goal": "transaction", "min_events": 1, "cap": None, "ratio": 1000.0,
                     "seed": 0},
    "capped and sampled": {"goal": "transaction", "min_events": 2, "cap": 3, "ratio": 1.0,
                           "seed": 7},
    "cart goal, no minimum": {"goal": "add_to_cart", "min_events": 0, "cap": 1, "ratio": 0.5,
                              "seed": 11},
}  # fmt: skip


def _anchors_body(case: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "mode": "session",
        "goal_criteria": _is(case["goal"]),
        "training_span": _SPAN,
        "min_events": case["min_events"],
        "max_negative_ratio": case["ratio"],
    }
    if case["cap"] is not None:
        body["max_anchors_per_session"] = case["cap"]
    return body


@pytest.mark.parametrize("name", list(_CASES))
@pytest.mark.usefixtures("duckdb_warehouse")
def test_session_anchors_from_the_log_equal_the_csv_and_the_sql(
    name: str, tmp_path: Path, csv_path: Path, capsys: pytest.CaptureFixture[str],  # noqa: F811
) -> None:  # fmt: skip
    case = _CASES[name]
    spec_path = _spec(tmp_path, _anchors_body(case))
    spec_path.write_text(spec_path.read_text() + f"seed: {case['seed']}\n")
    request = load_spec(spec_path)
    assert request.seed == case["seed"]
    events = read_events(csv_path)
    options = {k: case[k] for k in ("goal", "min_events", "cap", "ratio", "seed")}
    want = _plain(sampled_session_anchors(events, start=_START, end=_END, **options))
    found = _found(request, ECOMMERCE_SEED, tmp_path)
    assert found == want
    assert len(want) > 10 and {label for _, _, label in want} == {0, 1}
    if case["ratio"] == 1000.0:  # the plain helper agrees with the older unsampled one
        old = session_anchors(events, goal="transaction", min_events=1, start=_START, end=_END)
        assert want == sorted((e.session, e.t, label) for e, label in old)
    else:  # the cap and the sampling cut something here
        unsampled = {**options, "cap": None, "ratio": None}
        assert len(want) < len(sampled_session_anchors(events, start=_START, end=_END,
                                                       **unsampled))  # fmt: skip
    # The SQL path over the same events gives the same anchors.
    _build(spec_path, tmp_path / "sql.parquet", capsys)
    sql = sorted(
        (r["domain_sessionid"], int(r["anchor_ts"].timestamp() * 1000), int(r["label"]))
        for r in _file_rows(tmp_path / "sql.parquet")
    )
    assert sql == found


def _web_events() -> tuple[list[Event], dict[str, str]]:
    """The web seed's events (goal by ``event_name``), and event id -> event name."""
    events, names = [], {}
    for row in seed_rows(WEB_SEED):
        event_id = seed_event_id(row["event_id"])
        collector = _ms(row["collector_tstamp"])
        t = _ms(row["derived_tstamp"]) if row["derived_tstamp"] else collector
        events.append(
            Event(event_id, row["domain_sessionid"], row["domain_userid"], t, collector,
                  row["event_name"], None)
        )  # fmt: skip
        names[event_id] = row["event_name"]
    return events, names


def _ms(text: str) -> int:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


def test_page_pings_are_excluded_by_default(tmp_path: Path) -> None:
    group = {
        "name": "web_session", "version": 1, "attribute_key": {"name": "domain_sessionid"},
        "attributes": [{"name": "views", "type": "int64", "aggregation": "counter",
                        "events": [{"name": "page_view"}]}],
    }  # fmt: skip
    goal = {"all": [{"property": {"type": "atomic", "name": "event_name"}, "operator": "=",
                     "value": "link_click"}]}  # fmt: skip
    span = {"start_time": "2020-01-01T00:00:00Z", "end_time": "2022-01-01T00:00:00Z"}
    anchors = {"mode": "session", "goal_criteria": goal, "training_span": span,
               "max_anchors_per_session": 4, "max_negative_ratio": 2.0}  # fmt: skip
    request = DatasetBundleRequest.parse(
        {"anchors": anchors, "attributes": {"attribute_groups": [group]}, "seed": 3}
    )
    events, names = _web_events()
    start, end = _ms("2020-01-01T00:00:00Z"), _ms("2022-01-01T00:00:00Z")
    options: dict[str, Any] = {"goal": "link_click", "start": start, "end": end,
                               "min_events": 1, "cap": 4, "ratio": 2.0, "seed": 3,
                               "names": names}  # fmt: skip
    want = _plain(sampled_session_anchors(events, excluded=frozenset({"page_ping"}), **options))
    assert _found(request, WEB_SEED, tmp_path) == want
    assert {label for _, _, label in want} == {0, 1}
    assert want != _plain(sampled_session_anchors(events, **options))  # the exclusion matters
