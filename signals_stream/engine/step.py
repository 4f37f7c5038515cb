"""One entity row's whole step, pure: stored bytes and events in, new bytes and firings out.

    raw row bytes + the entity's events of one batch + the catalog + now
        -> decode -> watched values before -> fold (skipping replays) -> rules -> encode

The entity agent does only the I/O around it: read the row, call :func:`step_row`, send the
interventions, wait for their acknowledgement when there are some, write the row. The tests
drive the same function, so they exercise exactly what the stream runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import NamedTuple

from signals_stream.engine.apply import SourcedEvent, apply_record
from signals_stream.engine.catalog import Catalog
from signals_stream.engine.row import decode_row, encode_row
from signals_stream.engine.rules import fire_interventions, watched_values
from signals_stream.events.event import Event
from signals_stream.interventions.instance import InstanceDict

__all__ = ["RowUpdate", "step_row"]


class RowUpdate(NamedTuple):
    """What one step did to one entity row."""

    row: bytes  # the row to store (always written: a changelog that lagged catches up)
    instances: list[InstanceDict]  # to deliver before ``row`` is stored
    applied: int  # events folded
    replays: int  # events at or below the row's input offsets: applied before
    duplicates: int  # events whose ``event_id`` the row saw recently (``dedupe_ids``)


def step_row(
    raw: bytes | None,
    catalog: Catalog,
    key_name: str,
    entity_id: bytes,
    events: Sequence[SourcedEvent],
    now_ms: int,
    *,
    dedupe_ids: int = 0,
    decoded: dict[bytes, Event] | None = None,
) -> RowUpdate:
    """Apply ``events`` (in input order) to the row stored as ``raw`` (``None``: a new entity).

    Rules that watch the key's attributes are evaluated edge-triggered against the values
    before the update; each firing gives one instance per target, its id derived from the
    event after which the criteria first held, so the ids do not depend on batching.

    ``decoded`` is shared by the rows of one batch so that each projection is decoded once
    (``engine.apply.apply_record``).

    Raises:
        StateError: ``raw`` is not a row this version can read.
    """
    row = decode_row(raw)
    watched = bool(catalog.rules.watched(key_name))
    previous = watched_values(row, catalog, key_name, now_ms) if watched else {}
    done = apply_record(
        row, catalog, key_name, events, now_ms=now_ms, dedupe_ids=dedupe_ids, decoded=decoded
    )
    instances: list[InstanceDict] = []
    if watched and done.events:
        instances = fire_interventions(
            row,
            catalog,
            key_name,
            entity_id.decode(),
            previous,
            done.events,
            now_ms,
            before=partial(decode_row, raw),
        )
    return RowUpdate(encode_row(row), instances, done.applied, done.replays, done.duplicates)
