"""``GET /api/v1/event_log``, pure: the query as the SDK sends it (``name``, ``identifier``,
``format``) and the answer rendered from the entity's row. The workers (``api/event_log.py``)
and ``signals-stream api`` share it, so both answer the same bytes for the same row."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, NamedTuple

import orjson

from signals_stream.engine import Catalog
from signals_stream.engine.event_buffer import narrative, read_context
from signals_stream.engine.row import EntityRow
from signals_stream.errors import DefinitionError
from signals_stream.serving.retrieval import EntityRef

__all__ = ["ContextQuery", "parse_context_query", "render_context"]

Format = Literal["json", "narrative"]
_MAX_ID_CHARS = 1024


class ContextQuery(NamedTuple):
    """A parsed agentic-context read."""

    name: str
    identifier: str
    format: Format
    key_name: str  # the attribute key of the published log

    @property
    def ref(self) -> EntityRef:
        return (self.key_name, self.identifier)


def parse_context_query(query: Mapping[str, str], catalog: Catalog) -> ContextQuery:
    """Validate the query against the published event logs.

    Raises:
        DefinitionError: a parameter is missing or invalid (422 naming it).
        NotFoundError: no published event log of that name (404).
    """
    name = query.get("name", "")
    identifier = query.get("identifier", "")
    fmt = query.get("format") or "json"
    if not name:
        raise DefinitionError("name: the event log's name is required")
    if not identifier or len(identifier) > _MAX_ID_CHARS:
        raise DefinitionError(f"identifier: required, 1 to {_MAX_ID_CHARS} characters")
    if fmt not in ("json", "narrative"):
        raise DefinitionError(f"format: 'json' or 'narrative', not {fmt!r}")
    log = catalog.event_log(name)
    return ContextQuery(name, identifier, fmt, log.key.name)  # type: ignore[arg-type]


def render_context(
    query: ContextQuery, catalog: Catalog, row: EntityRow | None, now_ms: int
) -> tuple[bytes, str]:
    """The body and its content type: ``EventLogBufferResponse`` JSON, or the narrative as
    UTF-8 ``text/plain``."""
    context = read_context(row, catalog.event_log(query.name), query.identifier, now_ms)
    if query.format == "narrative":
        return narrative(context).encode(), "text/plain; charset=utf-8"
    return orjson.dumps(context.to_json()), "application/json"
