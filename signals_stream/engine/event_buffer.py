"""Agentic-context buffers inside the entity row, and their two read forms (JSON, narrative).

A buffer is stored in ``EntityRow.logs[<log name>]`` as ``[state_id, entries]``; an entry is
``[event_time_ms, event_id, event_name, page_urlpath, properties, size]``, sorted by
``(event time, event id)``. After every insert the buffer keeps its longest newest suffix
such that:

* no entry is more than ``max_age_seconds`` older (by event time) than the newest entry,
* at most ``max_events`` entries,
* the entries' encoded properties total at most :data:`MAX_BUFFER_BYTES`.

Each condition only gets harder to meet with older entries, so trimming after each insert
gives the same buffer as trimming the whole set once: the result does not depend on arrival
order or batching, and with the row's input offsets (skipping replays) it is exactly-once
across crashes. A string value is cut to :data:`MAX_VALUE_CHARS` characters and a JSON object
or list whose encoding is longer than that many bytes is kept as ``null``, so one entry holds
at most 50 x ~4 KiB.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from signals_stream.definitions.event_logs import CompiledEventLog
from signals_stream.engine.row import EntityRow
from signals_stream.events.parse import Event

__all__ = [
    "FUTURE_TOLERANCE_MS",
    "MAX_BUFFER_BYTES",
    "MAX_VALUE_CHARS",
    "Context",
    "append_events",
    "narrative",
    "prune_buffers",
    "read_context",
]

MAX_VALUE_CHARS = 1024
MAX_BUFFER_BYTES = 64 * 1024
# An event stamped far ahead of its arrival at the collector would push every real one out by
# age. Measured against collector_tstamp, not the wall clock, so a replay decides the same.
FUTURE_TOLERANCE_MS = 5 * 60 * 1000

_T, _ID, _NAME, _PATH, _PROPS, _SIZE = range(6)


def _bounded(value: Any) -> Any:
    if isinstance(value, str):
        return value[:MAX_VALUE_CHARS]
    if isinstance(value, dict | list):
        return value if len(orjson.dumps(value)) <= MAX_VALUE_CHARS else None
    return value


def _trim(entries: list[list[Any]], log: CompiledEventLog) -> None:
    if not entries:
        return
    cut = entries[-1][_T] - log.max_age_ms
    keep = 0
    size = 0
    for entry in reversed(entries):
        if entry[_T] < cut or keep == log.max_events or size + entry[_SIZE] > MAX_BUFFER_BYTES:
            break
        keep += 1
        size += entry[_SIZE]
    del entries[: len(entries) - keep]


def append_events(
    row: EntityRow, logs: Iterable[CompiledEventLog], events: Iterable[Event]
) -> None:
    """Add to each of ``logs``' buffers in ``row`` the ``events`` its selections take."""
    events = tuple(events)
    for log in logs:
        stored = row.logs.get(log.name)
        entries: list[list[Any]] = stored[1] if stored and stored[0] == log.state_id else []
        changed = False
        for event in events:
            if event.event_time_ms > event.collector_tstamp_ms + FUTURE_TOLERANCE_MS:
                continue
            if event.logged_by is not None and log.state_id not in event.logged_by:
                continue  # projected by an ingest stage that did not run this log yet
            props = log.entry(event)
            if props is None:
                continue
            props = {k: _bounded(v) for k, v in props.items()}
            entry = [
                event.event_time_ms,
                event.event_id,
                event.event_name,
                event.atomic("page_urlpath"),
                props,
                len(orjson.dumps(props)),
            ]
            at = bisect.bisect_right(entries, (entry[_T], entry[_ID]), key=lambda e: (e[0], e[1]))
            if at > 0 and entries[at - 1][_T] == entry[_T] and entries[at - 1][_ID] == entry[_ID]:
                continue  # the same event again (an upstream duplicate)
            entries.insert(at, entry)
            changed = True
        if changed:
            _trim(entries, log)
            row.logs[log.name] = [log.state_id, entries]


def prune_buffers(row: EntityRow, logs: Mapping[str, CompiledEventLog]) -> bool:
    """Drop buffers no published log of this key reads (unpublished, deleted, or written by
    an earlier definition). Returns True when something was dropped."""
    dead = [n for n, (sid, _) in row.logs.items() if n not in logs or logs[n].state_id != sid]
    for name in dead:
        del row.logs[name]
    return bool(dead)


class Context:
    """One entity's agentic context as read: what both formats are rendered from."""

    __slots__ = ("entries", "identifier", "log", "now_ms", "started_at_ms")

    def __init__(
        self,
        log: CompiledEventLog,
        identifier: str,
        entries: list[list[Any]],
        started_at_ms: int,
        now_ms: int,
    ) -> None:
        self.log = log
        self.identifier = identifier
        self.entries = entries
        self.started_at_ms = started_at_ms
        self.now_ms = now_ms

    def summary(self) -> str:
        """The summary line (also the JSON form's ``summary``)."""
        d = self.log.definition
        basis = (
            f"Based on last {d.max_events} recorded events for the last "
            f"{d.max_age_seconds} seconds."
        )
        if not self.entries:
            return f"No recorded events. {basis}"
        on_page = _seconds(self.now_ms - _page_since(self.entries))
        started = _seconds(self.now_ms - self.started_at_ms)
        return (
            f"{on_page} seconds on the current page. Session started {started} seconds ago. {basis}"
        )

    def to_json(self) -> dict[str, Any]:
        """The SDK's ``EventLogBufferResponse``, events oldest to newest."""
        d = self.log.definition
        return {
            "attribute_key": self.log.key.name,
            "identifier": self.identifier,
            "name": d.name,
            "version": d.version,
            "prompt": d.prompt,
            "started_at_ms": self.started_at_ms,
            "summary": self.summary(),
            "events": [entry[_PROPS] for entry in self.entries],
        }


def read_context(
    row: EntityRow | None, log: CompiledEventLog, identifier: str, now_ms: int
) -> Context:
    """The context of ``identifier`` from its row (``None``: no row; an empty buffer).

    ``started_at_ms`` is the earliest event time the row applied (for a session key, the
    session's start), or 0 when there is no row."""
    stored = None if row is None else row.logs.get(log.name)
    entries = list(stored[1]) if stored and stored[0] == log.state_id else []
    started = 0 if row is None or row.first_ms is None else row.first_ms
    return Context(log, identifier, entries, started, now_ms)


def _seconds(ms: int) -> int:
    return max(0, ms // 1000)


def _page_since(entries: list[list[Any]]) -> int:
    """Event time at which the newest entry's page (URL path) was reached: the oldest entry
    of the newest run of entries on that path."""
    path = entries[-1][_PATH]
    since = entries[-1][_T]
    for entry in reversed(entries):
        if entry[_PATH] != path:
            break
        since = entry[_T]
    return int(since)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("\r", " ")


def narrative(context: Context) -> str:
    """The plain-text form: prompt (if any), summary, heading and one table row per entry.

    ``event`` and ``url`` are filled from the ``event_name`` / ``page_urlpath`` properties
    when selected (under any output name), and ``event_context`` holds the other selected
    properties as ``name=value`` pairs, ``; ``-separated, nulls left out.
    """
    lines = ["[START CONTEXT]"]
    prompt = context.log.definition.prompt
    if prompt:
        lines += [prompt, ""]
    lines += [
        context.summary(),
        "",
        "## Real-time user behaviour",
        "",
        "| seconds_since_start_of_session | event | url | event_context |",
        "|---|---|---|---|",
    ]
    named = _named_outputs(context.log)
    for entry in context.entries:
        props: dict[str, Any] = entry[_PROPS]
        event = props.get(named["event_name"]) if "event_name" in named else None
        url = props.get(named["page_urlpath"]) if "page_urlpath" in named else None
        special = {named.get("event_name"), named.get("page_urlpath")}
        rest = "; ".join(
            f"{k}={_cell(v)}" for k, v in props.items() if k not in special and v is not None
        )
        since = _seconds(int(entry[_T]) - context.started_at_ms)
        lines.append(f"| {since} | {_cell(event)} | {_cell(url)} | {rest} |")
    lines.append("[END CONTEXT]")
    return "\n".join(lines)


def _named_outputs(log: CompiledEventLog) -> dict[str, str]:
    """Output names of the atomic ``event_name`` and ``page_urlpath`` properties, if any
    selection keeps them."""
    found: dict[str, str] = {}
    for selection in log.definition.events:
        for prop in selection.properties:
            if prop.type == "atomic" and prop.name in ("event_name", "page_urlpath"):
                found.setdefault(prop.name, prop.key)
    return found
