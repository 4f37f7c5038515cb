"""The engine on a real workload: the ecommerce dbt seed replayed through the agent's path.

Two halves that never share code:

* :func:`replay` runs the converted TSV lines exactly as the ingest and entity agents do:
  ``parse_tsv`` -> ``route_event`` (the catalog's routing plan) -> one entity-events record
  per (entity, event) -> ``apply_record`` (projection, ``fold_events``,
  ``prune_row``), with the row encoded and decoded between records as the RocksDB table does,
  and each event guarded by the input offset it carries.
* :func:`seed_facts` reads the same CSV with ``csv`` and ``json`` only, so expectations built on
  it are computed independently of the converter, the parser and the engine.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from signals_stream.engine import Catalog, apply_record, read_group
from signals_stream.engine.row import EntityRow, decode_row, encode_row
from signals_stream.events.parse import parse_tsv
from signals_stream.routing import EntityEvent, entity_row_key, route_event
from tests.dbt_seeds import ECOMMERCE_SEED, seed_rows, seed_tsv
from tests.unit.engine.groups import build_catalog

__all__ = [
    "READ_MS",
    "T0_MS",
    "Replay",
    "SeedFact",
    "baseline",
    "ecommerce_lines",
    "expected_buffers",
    "iso_ms",
    "replay",
    "route_lines",
    "seed_facts",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso_ms(text: str) -> int:
    """Epoch ms of a seed timestamp (``2022-12-22 13:25:47.677000+00:00``, or naive = UTC)."""
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return (parsed - _EPOCH) // timedelta(milliseconds=1)


# The seed ends on 2022-12-22 13:25; the replay runs as one backfill at T0, read a minute later.
T0_MS = iso_ms("2022-12-23 00:00:00")
READ_MS = T0_MS + 60_000


def ecommerce_lines() -> tuple[str, ...]:
    """The 834 ecommerce seed rows as enriched TSV lines (cached by ``tests.dbt_seeds``)."""
    return seed_tsv(ECOMMERCE_SEED)


def route_lines(
    lines: Iterable[str], catalog: Catalog, *, first_offset: int = 0
) -> list[EntityEvent]:
    """What the ingest agent produces: entity events, in line order."""
    plan = catalog.routing_plan()
    records: list[EntityEvent] = []
    # One input partition: the line number is the input offset each event carries.
    for offset, line in enumerate(lines, first_offset):
        records.extend(route_event(parse_tsv(line), plan, partition=0, offset=offset))
    return records


@dataclass
class Replay:
    """The entity-state table after a replay, and how to read it.

    Attributes:
        catalog: the published definitions the replay ran with.
        store: row key -> encoded row (the RocksDB table).
        applied: records folded.
        skipped: records skipped as already applied.
    """

    catalog: Catalog
    store: dict[bytes, bytes] = field(default_factory=dict)
    applied: int = 0
    skipped: int = 0

    def apply(self, records: Sequence[EntityEvent], now_ms: int) -> None:
        """Apply entity events as the entity agent does (``apply_record``), one at a time.

        Args:
            records: entity events in log order; each carries its input partition and offset,
                which make re-applying it a no-op.
            now_ms: the wall clock of the processing (one backfill instant).
        """
        for key_name, entity_id, partition, offset, projection in records:
            row_key = entity_row_key(key_name, entity_id)
            row = decode_row(self.store.get(row_key))
            done = apply_record(
                row, self.catalog, key_name, [(partition, offset, projection)], now_ms=now_ms
            )
            self.store[row_key] = encode_row(row)
            if done.replays:
                self.skipped += 1
            else:
                self.applied += 1

    def copy(self) -> Replay:
        """An independent copy (rows are immutable bytes, so a shallow copy suffices)."""
        return Replay(self.catalog, dict(self.store), self.applied, self.skipped)

    def row(self, key_name: str, entity_id: str) -> EntityRow | None:
        """The decoded row of one entity, ``None`` if it has none."""
        raw = self.store.get(entity_row_key(key_name, entity_id.encode()))
        return None if raw is None else decode_row(raw)

    def read(
        self, group: str, entity_id: str, now_ms: int = READ_MS, version: int | None = None
    ) -> dict[str, Any]:
        """``read_group`` of one published group for one entity of its key."""
        published = self.catalog.group(group, version)
        return read_group(self.row(published.key_name, entity_id), published, now_ms)

    def entities(self, key_name: str) -> set[str]:
        """The ids of every entity of ``key_name`` that has a row."""
        prefix = key_name.encode() + b"\x1f"
        return {k[len(prefix) :].decode() for k in self.store if k.startswith(prefix)}


def replay(lines: Iterable[str], catalog: Catalog, now_ms: int = T0_MS) -> Replay:
    """Route ``lines`` and apply every record at ``now_ms`` into a fresh table."""
    result = Replay(catalog)
    result.apply(route_lines(lines, catalog), now_ms)
    return result


@cache
def baseline() -> Replay:
    """The whole seed, in file order, under every group of ``groups`` (cached: do not mutate,
    take :meth:`Replay.copy`)."""
    return replay(ecommerce_lines(), build_catalog())


@dataclass(frozen=True, slots=True)
class SeedFact:
    """One CSV row, read with plain Python (numbers as ``float``, JSON ``null`` as ``None``).

    Attributes:
        index: row number (0-based, file order).
        event_id: ``event_id``.
        domain_userid: ``domain_userid`` (``""`` when absent).
        domain_sessionid: ``domain_sessionid`` (``""`` when absent).
        ecom_user: ``id`` of the first ecommerce ``user`` entity, if any.
        time_ms: ``derived_tstamp`` in epoch ms.
        identity: the atomic ``(event_vendor, event_name, event_version)``.
        action: the ecommerce action's ``type`` (``None`` when the row has no action).
        action_name: the action's ``name``.
        products / transactions / carts / steps / pages: ecommerce entity data, in order.
        page_urlpath: ``page_urlpath`` (``None`` when empty).
        page_url: ``page_url`` (``None`` when empty).
        sessions: the ``client_session`` entities (mobile rows).
    """

    index: int
    event_id: str
    domain_userid: str
    domain_sessionid: str
    ecom_user: str | None
    time_ms: int
    identity: tuple[str, str, str]
    action: str | None
    action_name: str | None
    products: tuple[dict[str, Any], ...]
    transactions: tuple[dict[str, Any], ...]
    carts: tuple[dict[str, Any], ...]
    steps: tuple[dict[str, Any], ...]
    pages: tuple[dict[str, Any], ...]
    page_urlpath: str | None
    page_url: str | None
    sessions: tuple[dict[str, Any], ...] = ()


_COLUMN = "contexts_com_snowplowanalytics_snowplow_ecommerce_{}_1_0_0"
_ACTION = "unstruct_event_com_snowplowanalytics_snowplow_ecommerce_snowplow_ecommerce_action_1_0_0"
_NUMBERS = ("price", "total_value", "revenue", "step")


def _cell(row: dict[str, str], column: str) -> tuple[dict[str, Any], ...]:
    text = row[column]
    if not text:
        return ()
    items = json.loads(text)
    out = []
    for item in items if isinstance(items, list) else [items]:
        out.append(
            {k: (float(v) if k in _NUMBERS and v is not None else v) for k, v in item.items()}
        )
    return tuple(out)


@cache
def seed_facts() -> tuple[SeedFact, ...]:
    """Every row of the ecommerce seed as a :class:`SeedFact` (cached)."""
    facts = []
    for index, row in enumerate(seed_rows(ECOMMERCE_SEED)):
        action = _cell(row, _ACTION)
        users = _cell(row, _COLUMN.format("user"))
        facts.append(
            SeedFact(
                index=index,
                event_id=row["event_id"],
                domain_userid=row["domain_userid"],
                domain_sessionid=row["domain_sessionid"],
                ecom_user=users[0].get("id") if users else None,
                time_ms=iso_ms(row["derived_tstamp"]),
                identity=(row["event_vendor"], row["event_name"], row["event_version"]),
                action=action[0].get("type") if action else None,
                action_name=action[0].get("name") if action else None,
                products=_cell(row, _COLUMN.format("product")),
                transactions=_cell(row, _COLUMN.format("transaction")),
                carts=_cell(row, _COLUMN.format("cart")),
                steps=_cell(row, _COLUMN.format("checkout_step")),
                pages=_cell(row, _COLUMN.format("page")),
                page_urlpath=row["page_urlpath"] or None,
                page_url=row["page_url"] or None,
                sessions=_cell(row, "contexts_com_snowplowanalytics_snowplow_client_session_1_0_1"),
            )
        )
    return tuple(facts)


def expected_buffers(
    facts: Iterable[SeedFact],
    key: str,
    selected: Callable[[SeedFact], bool],
    max_events: int,
    max_age_s: int,
) -> dict[str, list[dict[str, Any]]]:
    """Agentic-context buffers worked out from the CSV facts alone, for the event-log
    properties ``event_name``, ``page_urlpath``, the action's ``type`` and the first product's
    ``name`` (as ``product``): per entity of ``key`` (``domain_sessionid`` or
    ``domain_userid``), the selected rows by (event time, event id), cut by age relative to
    the newest, then by count."""
    by_entity: dict[str, list[SeedFact]] = {}
    for fact in facts:
        entity = getattr(fact, key)
        if entity and selected(fact):
            by_entity.setdefault(entity, []).append(fact)
    out = {}
    for entity, chosen in by_entity.items():
        chosen.sort(key=lambda f: (f.time_ms, f.event_id))
        newest = chosen[-1].time_ms
        kept = [f for f in chosen if f.time_ms >= newest - max_age_s * 1000][-max_events:]
        out[entity] = [
            {
                "event_name": f.identity[1],
                "page_urlpath": f.page_urlpath,
                "type": f.action,
                "product": f.products[0].get("name") if f.products else None,
            }
            for f in kept
        ]
    return out
