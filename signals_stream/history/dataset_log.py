"""A training dataset from the Kafka log: the engine replayed at every anchor (``--from log``).

    input topic, every partition, start -> end (kafka/log_window, a batch job)
      -> parse (refused records counted) -> per attribute key: (id, effective ms, event id,
         projection) into a :class:`~.spill.Spill` (sorted runs on disk)
      -> event or session anchors found on the way (the span's events with a session,
         spilled by (session, time, event id); sessions judged one at a time by
         datasets/session_anchors.py, sampled negatives spilled in their MD5 order)
    anchors (a CSV/Parquet/DuckDB file, or those found) -> per key, sorted by (id, T)
      -> engine.point_in_time.values_at_anchors per key (one entity's row in memory): the
         groups' values and the request's agentic contexts at T
      -> NDJSON per key -> DuckDB joins them with the anchors -> Parquet / CSV / a DuckDB table

Nothing holds the log in memory: events live in the spill's sorted runs, anchors too; session
anchors hold one session's events at a time.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson

from signals_stream.datasets.anchors import ANCHOR_TS, LABEL, SESSION_KEY
from signals_stream.datasets.models import (
    DatasetBundleRequest,
    EventAnchors,
    SessionAnchors,
    TrainingSpan,
    UserSuppliedAnchors,
)
from signals_stream.datasets.session_anchors import NegativeSampler, SessionEvent, session_anchors
from signals_stream.definitions import CompiledKey
from signals_stream.definitions.criteria import compile_criteria
from signals_stream.definitions.event_logs import CompiledEventLog
from signals_stream.engine.catalog import Catalog, PublishedGroup
from signals_stream.engine.point_in_time import Anchor, KeyedEvent, effective_ms, values_at_anchors
from signals_stream.errors import BadEvent, DefinitionError
from signals_stream.events.event import Event
from signals_stream.events.parse import parse_record
from signals_stream.history.spill import Spill
from signals_stream.kafka.auth import client_auth
from signals_stream.kafka.log_window import LogWindow, read_log_window
from signals_stream.settings import Settings

__all__ = ["LogBuild", "LogDatasetPlan", "build_from_log", "plan_of"]

_MAX_ID_CHARS = 1024  # as the router
OnRead = Callable[[LogWindow], None]
OnFold = Callable[[int, int], None]  # (anchors done, anchors in all)


@dataclass(frozen=True)
class LogDatasetPlan:
    """The request compiled: a catalog of its groups and agentic contexts, and per key the
    groups and the contexts (event logs) it reads."""

    catalog: Catalog
    keys: dict[str, CompiledKey]
    groups: dict[str, list[PublishedGroup]]
    logs: dict[str, list[CompiledEventLog]] = field(default_factory=dict)

    def key_columns(self, key_name: str) -> list[str]:
        """The value columns of one key: its attributes, then its contexts."""
        names = [name for g in self.groups.get(key_name, ()) for name in _names(g)]
        return names + [log.name for log in self.logs.get(key_name, ())]

    @property
    def columns(self) -> list[str]:
        return [name for key in self.keys for name in self.key_columns(key)]


def _names(group: PublishedGroup) -> tuple[str, ...]:
    return group.attribute_names


def plan_of(request: DatasetBundleRequest) -> LogDatasetPlan:
    """Compile the request's groups and agentic contexts (as published, on their own).

    Raises:
        DefinitionError: a group is not a stream group, or column names collide (422).
    """
    groups = request.attributes.attribute_groups
    for i, group in enumerate(groups):
        if group.kind != "stream":
            raise DefinitionError(
                f"attributes.attribute_groups.{i}: {group.full_name} is a batch group; only "
                "stream groups can be replayed from the log"
            )
    contexts = [log.model_copy(update={"is_published": True}) for log in request.agentic_contexts]
    catalog = Catalog.build(
        [g.model_copy(update={"is_published": True}) for g in groups], event_logs=contexts
    )
    by_key: dict[str, list[PublishedGroup]] = {}
    seen: set[str] = set()
    for i, group in enumerate(groups):
        published = catalog.group(group.name, group.version)
        for name in published.attribute_names:
            if name in seen:
                raise DefinitionError(
                    f"attributes.attribute_groups.{i}: attribute {name!r} is in two groups "
                    "(the dataset has one column per attribute name)"
                )
            seen.add(name)
        by_key.setdefault(published.key_name, []).append(published)
    keys = {name: catalog.programs[name].key for name in by_key}
    logs: dict[str, list[CompiledEventLog]] = {}
    reserved = {ANCHOR_TS, LABEL, SESSION_KEY, *keys}
    for i, log in enumerate(request.agentic_contexts):
        compiled = catalog.event_log(log.name)
        if log.name in seen or log.name in reserved or log.name == compiled.key.name:
            raise DefinitionError(
                f"agentic_contexts.{i}: {log.name!r} is also an attribute or anchor column "
                "(the context's column is named as the log)"
            )
        keys.setdefault(compiled.key.name, compiled.key)
        logs.setdefault(compiled.key.name, []).append(compiled)
    return LogDatasetPlan(catalog, keys, by_key, logs)


@dataclass
class LogBuild:
    """What a build did."""

    records: int = 0  # records read
    bad: int = 0  # records the parser refused
    events: int = 0  # (key, event) pairs spilled
    anchors: int = 0
    rows: int = 0
    seconds_read: float = 0.0
    seconds_fold: float = 0.0
    columns: list[str] = field(default_factory=list)


def _ms(value: Any) -> int:
    if isinstance(value, datetime):
        stamp = value if value.tzinfo else value.replace(tzinfo=UTC)
        return int(stamp.timestamp() * 1000)
    if isinstance(value, int | float):
        return int(value)
    return _ms(datetime.fromisoformat(str(value)))


def _entity(key: CompiledKey, event: Event) -> str | None:
    value = key.key_value(event)
    entity_id = None if value is None else str(value)
    if not entity_id or len(entity_id) > _MAX_ID_CHARS:
        return None
    return entity_id


AnchorRow = tuple[tuple[str | None, ...], int, Any]  # (ids by anchor column, T ms, label)


def anchor_columns(request: DatasetBundleRequest, keys: Iterable[str]) -> list[str]:
    """The anchors' key columns: session and event anchors always have ``domain_sessionid``
    (first, as in SQL: ``datasets/anchors.py``), then the groups' other keys."""
    names = list(keys)
    if isinstance(request.anchors, UserSuppliedAnchors):
        return names
    return [SESSION_KEY, *(n for n in names if n != SESSION_KEY)]


class _SpanEvents:
    """The events of the span that have a session: what session and event anchors are made
    of; each with its id per anchor column (``""`` for none: spilled tuples stay sortable)."""

    def __init__(self, span: TrainingSpan, keys: dict[str, CompiledKey], spill: Spill) -> None:
        self.start_ms = _ms(span.start_time)
        self.end_ms = _ms(span.end_time)
        self.keys = {n: k for n, k in keys.items() if n != SESSION_KEY}
        self.spill = spill

    def session_of(self, event: Event) -> str | None:
        if not self.start_ms <= event.event_time_ms < self.end_ms:
            return None
        session = event.atomic(SESSION_KEY)
        return str(session) if session else None  # anchors are events of a session, as in SQL

    def ids(self, session: str, event: Event) -> tuple[str, ...]:
        return (session, *(_entity(key, event) or "" for key in self.keys.values()))


def _ids(stored: tuple[str, ...]) -> tuple[str | None, ...]:
    return tuple(value or None for value in stored)


class _EventAnchorFinder(_SpanEvents):
    """Event anchors: events in the span matching the criteria, one anchor per event, at its
    event time (the event itself does not count: its effective time is not below it)."""

    def __init__(self, spec: EventAnchors, keys: dict[str, CompiledKey], spill: Spill) -> None:
        super().__init__(spec.training_span, keys, spill)
        self.passes = compile_criteria(spec.criteria)
        self.cap = spec.max_anchors_per_session

    def offer(self, event: Event) -> None:
        session = self.session_of(event)
        if session is None or not self.passes(event):
            return
        self.spill.add((session, event.event_time_ms, event.event_id, self.ids(session, event)))

    def anchors(self) -> Iterator[AnchorRow]:
        taken: tuple[str, int] = ("", 0)
        for session, t, _event_id, ids in self.spill.sorted():
            if self.cap is not None:
                n = taken[1] + 1 if taken[0] == session else 1
                taken = (session, n)
                if n > self.cap:
                    continue
            yield _ids(ids), t, None


class _SessionAnchorFinder(_SpanEvents):
    """Session anchors: every event of the span with a session is spilled by (session, time,
    event id); each session is then judged on its own (``datasets/session_anchors.py``), its
    positives given out at once, its negatives spilled in the sampling order and the first
    ``floor(ratio * positives)`` given out at the end. One session in memory at a time."""

    def __init__(
        self, spec: SessionAnchors, seed: int, keys: dict[str, CompiledKey], work: Path
    ) -> None:
        super().__init__(spec.training_span, keys, Spill(work))
        self.work = work
        self.spec = spec
        self.seed = seed
        self.goal = compile_criteria(spec.goal_criteria)
        self.excluded = frozenset(e.name for e in spec.excluded_events or ())

    def offer(self, event: Event) -> None:
        session = self.session_of(event)
        if session is None:
            return
        goal = self.goal(event)
        excluded = event.atomic("event_name") in self.excluded
        t = event.event_time_ms
        self.spill.add((session, t, event.event_id, goal, excluded, self.ids(session, event)))

    def _sessions(self) -> Iterator[tuple[str, list[SessionEvent], dict[str, tuple[str, ...]]]]:
        current: str | None = None
        events: list[SessionEvent] = []
        ids: dict[str, tuple[str, ...]] = {}
        for session, t, event_id, goal, excluded, stored in self.spill.sorted():
            if session != current:
                if current is not None:
                    yield current, events, ids
                current, events, ids = session, [], {}
            events.append(SessionEvent(t, event_id, goal, excluded))
            ids[event_id] = stored
        if current is not None:
            yield current, events, ids

    def anchors(self) -> Iterator[AnchorRow]:
        sampler = NegativeSampler(self.spec.max_negative_ratio)
        negatives = Spill(self.work)
        kept = None
        try:
            for session, events, ids in self._sessions():
                label, anchors = session_anchors(events, self.spec, self.seed)
                for anchor in anchors:
                    if label == 1:
                        sampler.positives += 1
                        yield _ids(ids[anchor.event_id]), anchor.t, 1
                    elif sampler.ratio is None:
                        yield _ids(ids[anchor.event_id]), anchor.t, 0
                    else:
                        order = sampler.order(self.seed, session, anchor)
                        negatives.add((*order, ids[anchor.event_id]))
            keep = sampler.keep()
            if keep is None:
                return
            kept = negatives.sorted()
            for _n, (_h, t, _event_id, stored) in zip(range(keep), kept, strict=False):
                yield _ids(stored), t, 0
        finally:
            if kept is not None:
                kept.close()
            negatives.close()


_Finder = _EventAnchorFinder | _SessionAnchorFinder


def read_anchor_file(
    path: Path, request: DatasetBundleRequest, key_names: Iterable[str]
) -> Iterator[tuple[tuple[str | None, ...], int, Any]]:
    """User-supplied anchors from a CSV or Parquet file, or the request's table in a DuckDB
    file: each key's column, ``anchor_ts`` and (unless ``has_label`` is false) ``label``.

    Raises:
        DefinitionError: the file lacks a column (422-like: names it).
    """
    spec = request.anchors
    has_label = not isinstance(spec, UserSuppliedAnchors) or spec.has_label is not False
    names = list(key_names)
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")  # a naive anchor_ts is UTC, as in the warehouse
        if path.suffix in (".duckdb", ".db"):
            if not isinstance(spec, UserSuppliedAnchors):
                raise DefinitionError("anchors: a DuckDB file needs user_supplied anchors")
            con.execute(f"ATTACH '{path}' AS anchors_db (READ_ONLY)")
            table = ".".join(
                f'"{part}"' for part in ("anchors_db", spec.source.schema_ or "main",
                                          spec.source.table)
            )  # fmt: skip
            source = table
        elif path.suffix == ".parquet":
            source = f"read_parquet('{path}')"
        else:
            source = f"read_csv('{path}', header=true)"
        present = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
        wanted = [*names, "anchor_ts", *(["label"] if has_label else [])]
        missing = [c for c in wanted if c not in present]
        if missing:
            raise DefinitionError(f"anchors.source: {path} has no column {missing[0]!r}")
        keys_sql = ", ".join(f'CAST("{n}" AS VARCHAR)' for n in names)
        label = ', "label"' if has_label else ", NULL"
        cursor = con.execute(
            f'SELECT {keys_sql}, epoch_ms(CAST("anchor_ts" AS TIMESTAMP)){label} FROM {source}'
        )
        while batch := cursor.fetchmany(10_000):
            for row in batch:
                yield tuple(row[: len(names)]), int(row[len(names)]), row[-1]
    finally:
        con.close()


async def _read_log(
    settings: Settings,
    plan: LogDatasetPlan,
    spills: dict[str, Spill],
    finder: _Finder | None,
    build: LogBuild,
    start_ms: int,
    on_read: OnRead | None,
) -> None:
    window_seen: list[LogWindow] = []
    batches = read_log_window(
        settings.bootstrap_servers,
        settings.input_topic,
        start_ms,
        auth=client_auth(settings),
        on_start=window_seen.append,
    )
    projection = plan.catalog.routing_plan().projection
    async with aclosing(batches):
        async for batch in batches:
            for record in batch:
                build.records += 1
                try:
                    event = parse_record(record.value)
                except BadEvent:
                    build.bad += 1
                    continue
                if finder is not None:
                    finder.offer(event)
                raw: bytes | None = None
                for name, key in plan.keys.items():
                    entity_id = _entity(key, event)
                    if entity_id is None:
                        continue
                    raw = raw or event.project(projection)
                    spills[name].add((entity_id, effective_ms(event), event.event_id, raw))
                    build.events += 1
            if on_read is not None and window_seen:
                on_read(window_seen[0])


def _keyed(items: Iterator[tuple[Any, ...]]) -> Iterator[KeyedEvent]:
    for entity_id, at_ms, event_id, raw in items:
        yield KeyedEvent(entity_id, at_ms, event_id, Event.from_projection(raw))


def _anchors(items: Iterator[tuple[Any, ...]]) -> Iterator[Anchor]:
    for entity_id, at_ms, index in items:
        yield Anchor(entity_id, at_ms, index)


def _json_default(value: Any) -> Any:
    if isinstance(value, set | frozenset | tuple):
        return sorted(value) if isinstance(value, set | frozenset) else list(value)
    return str(value)


def build_from_log(
    request: DatasetBundleRequest,
    settings: Settings,
    out: Path,
    *,
    anchors_file: Path | None = None,
    start_ms: int = 0,
    out_table: str | None = None,
    on_read: OnRead | None = None,
    on_fold: OnFold | None = None,
    work_dir: Path | None = None,
) -> LogBuild:
    """Build the dataset of ``request`` from the input log into ``out``.

    ``out``: a ``.parquet`` or ``.csv`` file, or with ``out_table`` (``schema.table``) a DuckDB
    file the table is written to. Anchors: ``anchors_file`` for user-supplied ones, else the
    request's event anchors, found in the log.

    Raises:
        DefinitionError: the request cannot be built from the log (422-like, names the field).
        LogUnavailable: the topic cannot be read.
    """
    import time

    plan = plan_of(request)
    spec = request.anchors
    if isinstance(spec, UserSuppliedAnchors) and anchors_file is None:
        raise DefinitionError(
            "anchors.source: user_supplied anchors from the log need --anchors FILE "
            "(CSV, Parquet or the DuckDB file holding the table)"
        )
    build = LogBuild(columns=plan.columns)
    columns = anchor_columns(request, plan.keys)
    with tempfile.TemporaryDirectory(prefix="signals-dataset-", dir=work_dir) as tmp:
        work = Path(tmp)
        spills = {name: Spill(work) for name in plan.keys}
        finder: _Finder | None = None
        if isinstance(spec, EventAnchors):
            finder = _EventAnchorFinder(spec, plan.keys, Spill(work))
        elif isinstance(spec, SessionAnchors):
            finder = _SessionAnchorFinder(spec, request.seed, plan.keys, work)
        began = time.perf_counter()
        asyncio.run(_read_log(settings, plan, spills, finder, build, start_ms, on_read))
        build.seconds_read = time.perf_counter() - began
        began = time.perf_counter()
        source = (
            read_anchor_file(anchors_file, request, plan.keys)
            if anchors_file is not None
            else (finder.anchors() if finder is not None else iter(()))
        )
        key_names = list(plan.keys)
        per_key = {name: Spill(work) for name in key_names}
        anchors_path = work / "anchors.ndjson"
        with anchors_path.open("wb") as anchors_out:
            for index, (ids, at_ms, label) in enumerate(source):
                by_column = dict(zip(columns, ids, strict=True))
                doc = {"_i": index, **by_column, "anchor_ms": at_ms, "label": label}
                anchors_out.write(orjson.dumps(doc, default=_json_default) + b"\n")
                for name in key_names:
                    entity_id = by_column[name]
                    if entity_id is not None:
                        per_key[name].add((entity_id, at_ms, index))
                build.anchors += 1
        value_paths: list[Path] = []
        done = 0
        for name in key_names:
            path = work / f"values-{len(value_paths)}.ndjson"
            value_paths.append(path)
            with path.open("wb") as values_out:
                rows = values_at_anchors(
                    plan.catalog,
                    name,
                    plan.groups.get(name, []),
                    _keyed(spills[name].sorted()),
                    _anchors(per_key[name].sorted()),
                    logs=plan.logs.get(name, ()),
                    context_format=request.agentic_context_format,
                )
                for found in rows:
                    doc = {"_i": found.row, **found.values}
                    values_out.write(orjson.dumps(doc, default=_json_default) + b"\n")
                    done += 1
                    if on_fold is not None and done % 1000 == 0:
                        on_fold(done, build.anchors * len(key_names))
        if on_fold is not None:
            on_fold(done, done)
        build.rows = _assemble(anchors_path, value_paths, plan, columns, out, out_table)
        build.seconds_fold = time.perf_counter() - began
    return build


def _assemble(
    anchors_path: Path,
    value_paths: list[Path],
    plan: LogDatasetPlan,
    columns: list[str],
    out: Path,
    out_table: str | None,
) -> int:
    """Join the anchors (key ``columns``) with each key's values (by anchor); write ``out``."""
    con = duckdb.connect()
    try:
        con.execute("SET preserve_insertion_order = false")
        joins = []
        selects = [f'a."{n}"' for n in columns]
        selects += ["make_timestamp(a.anchor_ms * 1000) AS anchor_ts", "a.label AS label"]
        for n, (path, name) in enumerate(zip(value_paths, plan.keys, strict=True)):
            alias = f"v{n}"
            joins.append(
                f"LEFT JOIN read_json('{path}', format='newline_delimited') {alias} "
                f"ON {alias}._i = a._i"
            )
            selects += [f'{alias}."{c}"' for c in plan.key_columns(name)]
        if anchors_path.stat().st_size == 0:
            return 0
        query = (
            f"SELECT {', '.join(selects)} FROM read_json('{anchors_path}', "
            f"format='newline_delimited') a {' '.join(joins)} ORDER BY a._i"
        )
        if out_table is not None:
            schema, _, table = out_table.rpartition(".")
            con.execute(f"ATTACH '{out}' AS target")
            if schema:
                con.execute(f'CREATE SCHEMA IF NOT EXISTS target."{schema}"')
            name = f'target."{schema or "main"}"."{table}"'
            con.execute(f"CREATE OR REPLACE TABLE {name} AS {query}")
            return int(con.execute(f"SELECT count(*) FROM {name}").fetchone()[0])  # type: ignore[index]
        fmt = "parquet" if out.suffix == ".parquet" else "csv, header true"
        con.execute(f"COPY ({query}) TO '{out}' (FORMAT {fmt})")
        counted = con.execute(f"SELECT count(*) FROM read_json('{anchors_path}')").fetchone()
        return int(counted[0]) if counted else 0
    finally:
        con.close()
