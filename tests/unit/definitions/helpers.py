"""Test inputs for the definitions: wire-capture bodies and real parsed events."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import orjson

from signals_stream.events.parse import Event, parse_json, parse_tsv
from tests.datafiles import DATA_DIR

__all__ = ["capture_bodies", "capture_result", "make_event", "tsv_events"]

_CAPTURE = DATA_DIR / "signals-sdk-wire-capture" / "capture-signals-py-0.4.10.json"
_CONTEXTS = "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-0"
_UNSTRUCT = "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0"


@cache
def _capture() -> list[dict[str, Any]]:
    return json.loads(_CAPTURE.read_text())


def capture_bodies(kind: str) -> list[tuple[str, dict[str, Any]]]:
    """``(label, body)`` of every captured request body of one definition kind.

    Args:
        kind: ``attribute_keys``, ``attribute_groups`` (including the groups embedded in the
            testing and dataset requests) or ``embedded_keys`` (keys inside those groups and
            event logs).
    """
    found: list[tuple[str, dict[str, Any]]] = []
    for step in _capture():
        for n, request in enumerate(step["requests"]):
            body, path = request["body"], request["path"]
            label = f"{step['step']}#{n}"
            if body is None:
                continue
            groups: list[dict[str, Any]] = []
            if path.startswith("/api/v1/registry/attribute_groups/"):
                groups = [body]
            elif path == "/api/v1/testing/attribute_groups/":
                groups = [body["attribute_group"]]
            elif path.startswith("/api/v1/datasets/"):
                groups = body["attributes"]["attribute_groups"]
            if kind == "attribute_keys" and path.startswith("/api/v1/registry/attribute_keys/"):
                found.append((label, body))
            elif kind == "attribute_groups":
                found += [(f"{label}:{g['name']}", g) for g in groups]
            elif kind == "embedded_keys":
                found += [(f"{label}:{g['name']}", g["attribute_key"]) for g in groups]
                if path.startswith("/api/v1/registry/event_logs/"):
                    found.append((label, body["attribute_key"]))
    return found


def capture_result(step: str) -> Any:
    """The response the capture's mock server returned for ``step``."""
    return next(s["result"] for s in _capture() if s["step"] == step)


@cache
def tsv_events(relative: str) -> tuple[Event, ...]:
    """Every good event of a shared TSV file, parsed by the real parser."""
    events = []
    for line in (DATA_DIR / relative).read_bytes().splitlines():
        try:
            events.append(parse_tsv(line))
        except Exception:  # noqa: BLE001 - the files hold deliberately bad rows too
            continue
    return tuple(events)


def make_event(
    *,
    entities: list[tuple[str, dict[str, Any]]] = (),  # type: ignore[assignment]
    derived: list[tuple[str, dict[str, Any]]] = (),  # type: ignore[assignment]
    unstruct: tuple[str, dict[str, Any]] | None = None,
    **atomic: Any,
) -> Event:
    """Build a real event through the JSON-form parser.

    Args:
        entities: ``(iglu uri, data)`` of the tracked entities (``contexts``).
        derived: ``(iglu uri, data)`` of enrichment entities (``derived_contexts``).
        unstruct: ``(iglu uri, data)`` of the self-describing event.
        **atomic: atomic fields, as JSON values.
    """
    doc: dict[str, Any] = {
        "event_id": "c0ff6a45-1826-479f-9efe-1ac1f10948d5",
        "collector_tstamp": "2024-03-15T10:20:30.000Z",
        **atomic,
    }
    if entities:
        doc["contexts"] = {
            "schema": _CONTEXTS,
            "data": [{"schema": s, "data": d} for s, d in entities],
        }
    if derived:
        doc["derived_contexts"] = {
            "schema": _CONTEXTS,
            "data": [{"schema": s, "data": d} for s, d in derived],
        }
    if unstruct is not None:
        doc["event"] = "unstruct"
        doc["unstruct_event"] = {
            "schema": _UNSTRUCT,
            "data": {"schema": unstruct[0], "data": unstruct[1]},
        }
    return parse_json(orjson.dumps(doc))
