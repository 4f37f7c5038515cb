"""Point-in-time values: every attribute as the live engine would have served it at an anchor.

The boundary rule (shared with the SQL builder, ``docs/semantics.md``): an event counts for an
anchor at ``T`` iff ``collector_tstamp < T`` and its event time (``derived_tstamp``, else
``collector_tstamp``) ``< T``; values are read at ``now = T``. So an event counts from its
*effective time* ``max(collector, event time)`` on (:func:`effective_ms`), and a row for ``T``
is the fold of the entity's events whose effective time is below ``T``.

The fold is the stream's own (``engine.fold.fold_events`` with the clock at the event's
effective time, ``EntityRow.record_events``), the read is the API's (``engine.read.read_group``
at ``T``). It streams: given one key's events sorted by ``(entity, effective time, event id)``
and that key's anchors sorted by ``(entity, T)``, it keeps one entity's row at a time and
hands out each anchor's values as soon as the entity's events before it are folded.

Agentic contexts (event logs of the key) are kept the same way: each event is appended to the
row's buffers with the stream's ``engine.event_buffer.append_events``, and each anchor reads
the context as ``GET event_log`` renders it at ``now = T`` (``serving.agentic``'s renderers).

    events (entity, effective ms, event) sorted ─┐
    anchors (entity, T, index) sorted ───────────┴─> fold up to T, read_group at T -> values
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import orjson

from signals_stream.definitions.event_logs import CompiledEventLog
from signals_stream.engine.catalog import Catalog, PublishedGroup
from signals_stream.engine.event_buffer import append_events, narrative, read_context
from signals_stream.engine.fold import fold_events
from signals_stream.engine.read import read_group
from signals_stream.engine.row import EntityRow
from signals_stream.events.event import Event

__all__ = ["Anchor", "AnchorValues", "KeyedEvent", "effective_ms", "values_at_anchors"]


class KeyedEvent(NamedTuple):
    """One event of an entity, with the time from which it counts."""

    entity_id: str
    effective_ms: int  # :func:`effective_ms`
    event_id: str  # ties
    event: Event


class Anchor(NamedTuple):
    """A moment of one entity: ``row`` says which output row it fills."""

    entity_id: str
    anchor_ms: int
    row: int


class AnchorValues(NamedTuple):
    """An anchor's values: attribute name -> value, per group, in the groups' order."""

    row: int
    values: dict[str, Any]


def effective_ms(event: Event) -> int:
    """From when ``event`` counts: it counts for ``T`` iff this is below ``T``."""
    return max(event.collector_tstamp_ms, event.event_time_ms)


def values_at_anchors(
    catalog: Catalog,
    key_name: str,
    groups: Sequence[PublishedGroup],
    events: Iterable[KeyedEvent],
    anchors: Iterable[Anchor],
    *,
    column: Any = None,
    logs: Sequence[CompiledEventLog] = (),
    context_format: str = "json",
) -> Iterator[AnchorValues]:
    """The values of ``groups`` (all on ``key_name``) at every anchor, and the context of each
    of ``logs`` (on the same key) under the log's name: the ``EventLogBufferResponse`` JSON
    text (``context_format`` ``json``) or the narrative text.

    Args:
        events: the key's events sorted by ``(entity_id, effective_ms, event_id)``.
        anchors: the anchors sorted by ``(entity_id, anchor_ms)``.
        column: ``column(group, attribute name) -> output name`` (default: the attribute's
            name).

    Yields one :class:`AnchorValues` per anchor, in the anchors' order.
    """
    program = catalog.programs.get(key_name)
    name = column or (lambda _group, attribute: attribute)
    stream = iter(events)
    pending: KeyedEvent | None = next(stream, None)
    current: str | None = None
    row = EntityRow()
    for anchor in anchors:
        if anchor.entity_id != current:
            current, row = anchor.entity_id, EntityRow()
            while pending is not None and pending.entity_id < current:  # entities without one
                pending = next(stream, None)
        while (
            pending is not None
            and pending.entity_id == current
            and pending.effective_ms < anchor.anchor_ms
        ):
            one = (pending.event,)
            if program is not None:
                fold_events(row, program, one, pending.effective_ms)
            if logs:
                append_events(row, logs, one)
            if program is not None or logs:
                row.record_events(one, now_ms=pending.effective_ms)
            pending = next(stream, None)
        values: dict[str, Any] = {}
        for group in groups:
            for attribute, value in read_group(row, group, anchor.anchor_ms).items():
                values[name(group, attribute)] = value
        for log in logs:
            values[log.name] = _context(row, log, anchor, context_format)
        yield AnchorValues(anchor.row, values)


def _context(row: EntityRow, log: CompiledEventLog, anchor: Anchor, context_format: str) -> str:
    """What ``GET event_log?name=<log>&identifier=<entity>`` answers at ``T`` (as text)."""
    context = read_context(row, log, anchor.entity_id, anchor.anchor_ms)
    if context_format == "narrative":
        return narrative(context)
    return orjson.dumps(context.to_json()).decode()
