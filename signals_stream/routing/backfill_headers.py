"""The two headers of entity-events records that backfill needs (``engine.backfill``).

- ``signals-routed-for``: on a live record, the backfill ids of the catalog the ingest routed it
  with: only such events are live for those backfills' slots (an older plan may have left out
  what they read).
- ``signals-backfill``: on a record of the backfill road, its backfill id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = [
    "BACKFILL_HEADER",
    "ROUTED_FOR_HEADER",
    "backfill_of",
    "routed_for",
    "routed_for_header",
]

ROUTED_FOR_HEADER = "signals-routed-for"
BACKFILL_HEADER = "signals-backfill"
_SEP = ","  # not in a backfill id (group names are identifiers)

Headers = Iterable[tuple[str, bytes]] | Mapping[str, bytes] | None


def routed_for_header(backfills: tuple[str, ...]) -> list[tuple[str, bytes]] | None:
    """The live record's headers for a plan that knew ``backfills`` (None: no backfill)."""
    return [(ROUTED_FOR_HEADER, _SEP.join(backfills).encode())] if backfills else None


def _value(headers: Headers, name: str) -> bytes | None:
    if headers is None:
        return None
    if isinstance(headers, Mapping):
        return headers.get(name)
    for key, value in headers:
        if key == name:
            return value
    return None


def routed_for(headers: Headers) -> tuple[str, ...]:
    """The backfill ids a live record was routed for."""
    value = _value(headers, ROUTED_FOR_HEADER)
    return tuple(value.decode().split(_SEP)) if value else ()


def backfill_of(headers: Headers) -> str | None:
    """The backfill id of a backfill-road record; None for any other record."""
    value = _value(headers, BACKFILL_HEADER)
    return value.decode() if value else None
