"""The intervention preview: who matches a rule now, and how often it would have fired.

* **Now**: the rule is resolved against the published groups (as if published itself), and
  every worker scans the rows of the rule's attribute key in the partitions it owns
  (:func:`scan_entities` over :func:`table_entities`), reading the watched attributes at
  now; ``changed`` counts as matching. The entry worker adds up the workers' answers
  (``api/testing.py``).
  ``signals-stream api`` scans its Redis copy of the rows instead (:func:`scan_redis`) when
  that copy holds every partition.
* **Firings**: the window of the input log is folded on event time with the rules evaluated
  after each event (``engine.history.fold_on_event_time``), from empty state at the window's
  start, edge-triggered as live: each firing counts once, with its distinct targets per key.
* **Other target keys now**: a firing's id for a target key other than the rule's own is
  that key's value on the triggering event, which no row holds. For the entities matching
  now, the answer takes it from each one's latest event in the window
  (``engine.history.latest_targets``): where a firing now would be sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from signals_stream.definitions.durations import duration_ms
from signals_stream.engine.catalog import Catalog
from signals_stream.engine.fold import FUTURE_TOLERANCE_MS
from signals_stream.engine.history import (
    EntityHistory,
    fold_on_event_time,
    latest_targets,
    matches_now,
)
from signals_stream.engine.row import EntityRow, decode_row
from signals_stream.errors import DefinitionError
from signals_stream.history.reading import HistoryRead, Progress, bounded, read_history
from signals_stream.history.requests import PreviewRequest
from signals_stream.interventions import ResolvedRule, RuleIntervention
from signals_stream.profiles import RedisRows
from signals_stream.registry import Registry
from signals_stream.routing.row_keys import entity_row_key, split_row_key
from signals_stream.settings import Settings

__all__ = [
    "Scan",
    "count_firings",
    "other_targets",
    "preview_answer",
    "preview_rule",
    "scan_redis",
    "scan_entities",
    "table_entities",
]


def preview_rule(
    registry: Registry, rule: RuleIntervention, *, since_publication: bool = True
) -> tuple[Catalog, ResolvedRule]:
    """The published catalog with ``rule`` as its only rule, published.

    Args:
        since_publication: as live (state counts from each group's publication), for reading
            the rows; False for folding the log, whose events predate the publications.

    Raises:
        DefinitionError: the rule cannot be resolved against the published groups (422).
    """
    published = rule.model_copy(update={"is_published": True})
    catalog = registry.catalog(rules=[published], since_publication=since_publication)
    resolved = catalog.rules.rules.get(rule.name)
    if resolved is None:
        why = catalog.rules.skipped.get(rule.key, "it resolves to no published group")
        raise DefinitionError(f"intervention {rule.key} cannot be evaluated: {why}")
    return catalog, resolved


@dataclass
class Scan:
    """What scanning some partitions found."""

    partitions: list[int] = field(default_factory=list)
    scanned: int = 0
    matched: int = 0
    sample: list[str] = field(default_factory=list)
    workers: int = 1
    ids: list[str] | None = None  # every matching id, when asked (other target keys)

    def add(self, other: Scan, sample: int) -> None:
        self.partitions += other.partitions
        self.scanned += other.scanned
        self.matched += other.matched
        self.sample = sorted(self.sample + other.sample)[:sample]
        if other.ids is not None:
            self.ids = (self.ids or []) + other.ids

    def to_json(self) -> dict[str, Any]:
        found = {
            "partitions": sorted(self.partitions),
            "scanned": self.scanned,
            "matched": self.matched,
            "sample": self.sample,
        }
        return found if self.ids is None else {**found, "ids": self.ids}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Scan:
        ids = data.get("ids")
        return cls(
            list(data["partitions"]), int(data["scanned"]), int(data["matched"]),
            data["sample"], ids=None if ids is None else list(ids),
        )  # fmt: skip


def other_targets(catalog: Catalog, rule: ResolvedRule) -> list[str]:
    """The rule's target keys besides its own that a firing can have an id for (a published
    group reads them)."""
    return [t for t in rule.targets if t != rule.key_name and t in catalog.programs]


def scan_entities(
    rows: Iterable[tuple[str, EntityRow]],
    catalog: Catalog,
    rule: ResolvedRule,
    now_ms: int,
    *,
    sample: int,
    ids: bool = False,
) -> Scan:
    """Evaluate ``rule`` on every ``(entity id, row)`` of its key; ``ids``: keep every
    matching id (a sample of ``sample`` otherwise)."""
    found = Scan(ids=[] if ids else None)
    for entity_id, row in rows:
        found.scanned += 1
        if matches_now(row, catalog, rule, now_ms):
            found.matched += 1
            if len(found.sample) < sample:
                found.sample.append(entity_id)
            if found.ids is not None:
                found.ids.append(entity_id)
    found.sample.sort()
    return found


def table_entities(
    rows: Iterable[tuple[bytes, bytes]], key_name: str
) -> Iterator[tuple[str, EntityRow]]:
    """``(entity id, row)`` of the table rows (row key, row bytes) of ``key_name``."""
    for row_key, raw in rows:
        name, entity_id = split_row_key(row_key)
        if name == key_name:
            yield entity_id.decode(), decode_row(raw)


async def scan_redis(
    rows: RedisRows,
    registry: Registry,
    rule: RuleIntervention,
    now_ms: int,
    *,
    sample: int,
    ids: bool = False,
) -> Scan:
    """The workers' scan over every partition, from the profiles store's copy of the rows.

    Raises:
        ProfilesUnavailable: Redis is down, or does not hold every partition in full (from
            before the scan to its end): the caller asks a worker instead.
    """
    catalog, resolved = preview_rule(registry, rule)
    total = Scan(partitions=list(range(rows.partitions)), workers=0, ids=[] if ids else None)
    async for chunk in rows.scan_key(resolved.key_name):
        found = scan_entities(chunk, catalog, resolved, now_ms, sample=sample, ids=ids)
        found.partitions = []
        total.add(found, sample)
    return total


def key_prefix(key_name: str) -> bytes:
    """Row keys of ``key_name`` sort after this and start with it (the scan's start)."""
    return entity_row_key(key_name, b"")


async def preview_answer(
    query: PreviewRequest,
    settings: Settings,
    catalog: Catalog,
    rule: ResolvedRule,
    scan: Scan,
    *,
    now_ms: int,
) -> dict[str, Any]:
    """The preview's answer: ``scan`` (matching now, from the workers or Redis), the firings
    over the request's window, and, for target keys other than the rule's own, the ids a
    firing now would go to (``scan`` must then hold every matching id).

    Args:
        catalog, rule: :func:`preview_rule` with ``since_publication=False``.

    Raises:
        HistoryTooLarge, HistoryDeadline, LogUnavailable: see :mod:`.reading`.
    """
    firings, history = await count_firings(query, settings, catalog, rule, now_ms=now_ms)
    matches: dict[str, list[str]] = {rule.key_name: scan.sample}
    body: dict[str, Any] = {
        "intervention": {"name": rule.name, "version": rule.version},
        "attribute_key": rule.key_name,
        "scanned_count": scan.scanned,
        "matched_count": scan.matched,
        "matches": matches,
    }
    others = other_targets(catalog, rule)
    if others and scan.ids is not None:
        found: dict[str, set[str]] = {target: set() for target in others}
        for entity_id in scan.ids:
            for target, target_id in latest_targets(
                history.events(entity_id), catalog, others
            ).items():
                found[target].add(target_id)
        matches |= {t: sorted(ids)[: query.sample] for t, ids in found.items()}
        body["matched_targets"] = {rule.key_name: scan.matched} | {
            t: len(ids) for t, ids in found.items()
        }
    return body | {"workers": scan.workers, "firings": firings}


async def count_firings(
    request: PreviewRequest,
    settings: Settings,
    catalog: Catalog,
    rule: ResolvedRule,
    *,
    now_ms: int,
    progress: Progress | None = None,
) -> tuple[dict[str, Any], EntityHistory]:
    """How often ``rule`` would have fired over the request's window of the input log, and
    the window's events (by id of the rule's key).

    Raises:
        HistoryTooLarge, HistoryDeadline, LogUnavailable: see :mod:`.reading`.
    """
    history = EntityHistory(
        key=catalog.programs[rule.key_name].key,
        projection=catalog.routing_plan().projection,
        start_ms=now_ms - duration_ms(request.window),
        end_ms=now_ms + FUTURE_TOLERANCE_MS,
        app_ids=frozenset(request.app_ids or ()),
    )
    what = f"previewing intervention {rule.key} over the last {request.window}"
    read = HistoryRead()
    firings: set[str] = set()
    entities = 0
    targets: dict[str, set[str]] = {}
    async with bounded(settings, what, read):
        await read_history(settings, history, what=what, read=read, progress=progress)
        for entity_id in history.entity_ids():
            events = history.events(entity_id)
            instances = fold_on_event_time(catalog, rule.key_name, entity_id, events, rules=True)
            fired = [i for i in instances.instances if i["name"] == rule.name]
            entities += bool(fired)
            for instance in fired:
                firings.add(instance["intervention_id"])
                target = instance["target_attribute_key"]
                targets.setdefault(target["name"], set()).add(target["id"])
            await asyncio.sleep(0)  # the deadline can fire between entities
    return {
        "window": request.model_dump(mode="json")["window"],
        "count": len(firings),
        "entities": entities,
        "targets": {name: len(ids) for name, ids in sorted(targets.items())},
        "scanned_entities": history.seen,
        "records_read": 0 if read.window is None else read.window.read,
        "bad_records": read.bad,
    }, history
