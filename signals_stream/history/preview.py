"""The intervention preview: who matches a rule now, and how often it would have fired.

* **Now**: the rule is resolved against the published groups (as if published itself), and
  every worker scans the rows of the rule's attribute key in the partitions it owns
  (:func:`scan_rows`), reading the watched attributes at now; ``changed`` counts as matching.
  The entry worker adds up the workers' answers (``api/testing.py``).
* **Firings**: the window of the input log is folded on event time with the rules evaluated
  after each event (``engine.history.fold_on_event_time``), from empty state at the window's
  start, edge-triggered as live: each firing counts once, with its distinct targets per key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from signals_stream.definitions.durations import duration_ms
from signals_stream.engine.catalog import Catalog
from signals_stream.engine.fold import FUTURE_TOLERANCE_MS
from signals_stream.engine.history import EntityHistory, fold_on_event_time, matches_now
from signals_stream.engine.row import decode_row
from signals_stream.errors import DefinitionError
from signals_stream.history.reading import HistoryRead, Progress, bounded, read_history
from signals_stream.history.requests import PreviewRequest
from signals_stream.interventions import ResolvedRule, RuleIntervention
from signals_stream.registry import Registry
from signals_stream.routing.row_keys import entity_row_key, split_row_key
from signals_stream.settings import Settings

__all__ = ["Scan", "count_firings", "preview_rule", "scan_rows"]


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

    def add(self, other: Scan, sample: int) -> None:
        self.partitions += other.partitions
        self.scanned += other.scanned
        self.matched += other.matched
        self.sample = sorted(self.sample + other.sample)[:sample]

    def to_json(self) -> dict[str, Any]:
        return {
            "partitions": sorted(self.partitions),
            "scanned": self.scanned,
            "matched": self.matched,
            "sample": self.sample,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Scan:
        return cls(
            list(data["partitions"]), int(data["scanned"]), int(data["matched"]), data["sample"]
        )


def scan_rows(
    rows: Iterable[tuple[bytes, bytes]],
    catalog: Catalog,
    rule: ResolvedRule,
    now_ms: int,
    *,
    sample: int,
) -> Scan:
    """Evaluate ``rule`` on every row of its key among ``rows`` (row key, row bytes)."""
    found = Scan()
    for row_key, raw in rows:
        key_name, entity_id = split_row_key(row_key)
        if key_name != rule.key_name:
            continue
        found.scanned += 1
        if matches_now(decode_row(raw), catalog, rule, now_ms):
            found.matched += 1
            if len(found.sample) < sample:
                found.sample.append(entity_id.decode())
    found.sample.sort()
    return found


def key_prefix(key_name: str) -> bytes:
    """Row keys of ``key_name`` sort after this and start with it (the scan's start)."""
    return entity_row_key(key_name, b"")


async def count_firings(
    request: PreviewRequest,
    settings: Settings,
    catalog: Catalog,
    rule: ResolvedRule,
    *,
    now_ms: int,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """How often ``rule`` would have fired over the request's window of the input log.

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
    }
