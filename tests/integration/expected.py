"""Reference values for integration tests: the same events through the pure engine, in
order, uninterrupted; and comparison against what workers serve."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import yaml

from signals_stream.devtools.generator import GeneratorConfig, generate_events
from signals_stream.engine import fold_events, read_group
from signals_stream.engine.row import EntityRow
from signals_stream.events.parse import Event, parse_record
from signals_stream.registry.loader import load_definitions
from signals_stream.routing import route_event
from tests.integration.workers import Worker

__all__ = [
    "CONTEXT_LOG",
    "buffer_mismatches",
    "expected_buffers",
    "expected_values",
    "generated_lines",
    "lifetime_definitions",
    "mismatches",
    "page_views",
    "publish_log",
]

# An agentic context over every event of a session: name, URL path and id of each.
CONTEXT_LOG: dict[str, Any] = {
    "name": "crash_ctx",
    "attribute_key": {"name": "domain_sessionid"},
    "events": [
        {
            "event": {},
            "properties": [
                {"type": "atomic", "name": "event_name"},
                {"type": "atomic", "name": "page_urlpath"},
                {"type": "atomic", "name": "event_id", "output_name": "id"},
            ],
        }
    ],
    "max_events": 20,
    "max_age_seconds": 600,
}

EXAMPLE = Path(__file__).parents[2] / "signals_stream" / "examples" / "ecommerce.yaml"


def generated_lines(*, users: int, seed: int, count: int) -> list[bytes]:
    """``count`` TSV lines of the generator's shoppers."""
    generated = generate_events(GeneratorConfig(users=users, seed=seed))
    return [next(generated).line for _ in range(count)]


def page_views(lines: list[bytes]) -> Counter[str]:
    """Page views per ``domain_userid``, counted straight from the TSV lines (field 126
    ``event_name``, field 15 ``domain_userid``), not with the engine."""
    views: Counter[str] = Counter()
    for line in lines:
        fields = line.split(b"\t")
        if fields[126] == b"page_view":
            views[fields[15].decode()] += 1
    return views


def lifetime_definitions(path: Path) -> Path:
    """The example groups without wall-clock dependent attributes (rolling, time_since), so
    values read at different times compare exactly."""
    doc = yaml.safe_load(EXAMPLE.read_text())
    for group in doc["attribute_groups"]:
        group["attributes"] = [
            a
            for a in group["attributes"]
            if "period" not in a and not a["aggregation"].startswith("time_since")
        ]
    doc.pop("interventions", None)  # they read the rolling attributes removed above
    path.write_text(yaml.safe_dump(doc))
    return path


def expected_values(definitions: Path, lines: list[bytes]) -> dict[tuple[str, str], dict[str, Any]]:
    """Values after an uninterrupted, in-order pass through the same pure engine."""
    catalog = load_definitions(definitions).catalog()
    plan = catalog.routing_plan()
    rows: dict[tuple[str, bytes], EntityRow] = {}
    for offset, line in enumerate(lines):
        for key_name, entity_id, _, _, projection in route_event(
            parse_record(line), plan, partition=0, offset=offset
        ):
            row = rows.setdefault((key_name, entity_id), EntityRow())
            fold_events(row, catalog.programs[key_name], [Event.from_projection(projection)], 0)
    groups = {"domain_userid": "ecommerce_user", "domain_sessionid": "ecommerce_session"}
    return {
        (groups[key], entity_id.decode()): read_group(row, catalog.group(groups[key]), 0)
        for (key, entity_id), row in rows.items()
    }


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return (
            isinstance(a, int | float)
            and isinstance(b, int | float)
            and math.isclose(a, b, rel_tol=1e-9)
        )
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def mismatches(worker: Worker, expected: dict[tuple[str, str], dict[str, Any]]) -> list[str]:
    wrong = []
    for (group, entity_id), values in expected.items():
        status, raw = worker.get(f"/tables/{group}/{entity_id}")
        got = orjson.loads(raw).get("attributes") if status == 200 else None
        if got is None or not _same(got, values):
            wrong.append(f"{group}/{entity_id}: expected {values}, got {got}")
    return wrong


def publish_log(worker: Worker, body: dict[str, Any]) -> None:
    """Create and publish an event log through the registry API."""
    status, raw = worker.request("POST", "/api/v1/registry/event_logs/", body)
    assert status == 200, raw
    status, raw = worker.request("POST", "/api/v1/engines/publish", {"event_logs": [body]})
    assert status == 200, raw


def expected_buffers(lines: list[bytes]) -> dict[str, list[dict[str, Any]]]:
    """:data:`CONTEXT_LOG`'s buffers by hand: each session's events by (event time, id), cut
    by age relative to the newest, then to the last ``max_events``."""
    by_session: dict[str, list[tuple[int, str, dict[str, Any]]]] = {}
    for line in lines:
        event = parse_record(line)
        session = event.atomic("domain_sessionid")
        if session:
            by_session.setdefault(session, []).append(
                (
                    event.event_time_ms,
                    event.event_id,
                    {
                        "event_name": event.atomic("event_name"),
                        "page_urlpath": event.atomic("page_urlpath"),
                        "id": event.event_id,
                    },
                )
            )
    out = {}
    for session, entries in by_session.items():
        entries.sort(key=lambda e: (e[0], e[1]))
        newest = entries[-1][0]
        kept = [e for e in entries if e[0] >= newest - CONTEXT_LOG["max_age_seconds"] * 1000]
        out[session] = [props for _, _, props in kept[-CONTEXT_LOG["max_events"] :]]
    return out


def buffer_mismatches(worker: Worker, expected: dict[str, list[dict[str, Any]]]) -> list[str]:
    wrong = []
    for session, events in expected.items():
        status, raw = worker.get(
            f"/api/v1/event_log?name={CONTEXT_LOG['name']}&identifier={session}"
        )
        got = orjson.loads(raw).get("events") if status == 200 else None
        if got != events:
            wrong.append(f"{session}: expected {len(events)} entries, got {got and len(got)}")
    return wrong
