"""An attribute group compiled to one SQL query over the atomic events table. Pure.

The query computes, for every entity of the group's key, each attribute's value as the stream
would read it at ``now`` after folding the same events on event time
(``engine.history.fold_on_event_time``), in one pass over the wide Snowplow table::

    __src     one row per event: the entity id, event time (ms), event id and, per
              attribute, whether it takes the event and the value it aggregates
    __gaps    (TTL only) where a TTL'd state starts again: a take after a gap >= the TTL
    __ev      (TTL only) the last restart per entity and attribute
    __agg     per entity: counter, sum, min, max, mean, first, last, approx distinct,
              time_since_*, and each TTL'd attribute's last update
    __vals_N  per entity and value (frequency and unique-list attributes): count, last seen,
    __rank_N  ranked by the stream's order, cut at its cap of 100
    SELECT    defaults, TTL expiry and the declared types; the run's time as a column

At anchors (``compile_at_anchors``, the training datasets of ``signals_stream.datasets``) the
"entity" is an anchor and ``now`` its own time: ``__events`` is the per-event source above,
``__anc`` the anchors (id, the key's id, time in ms), and ``__src`` every anchor joined to its
entity's events strictly before it (collector and event time both ``< T``, the boundary rule
of ``docs/semantics.md``), one row per anchor without any. Everything after is the same query
with ``now`` a column, grouped per anchor.

Semantics follow ``signals_stream.aggregations`` and ``docs/semantics.md`` ("Batch engine"
lists where SQL and the stream differ). ``now`` is a literal (``now_ms``, as ``batch run``
uses) or the warehouse's ``CURRENT_TIMESTAMP`` (``now_ms=None``, for SQL run elsewhere).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlglot import exp

from signals_stream.aggregations import UNIQUE_LIST_CAP, time_unit_ms
from signals_stream.aggregations.frequency import FREQUENCY_CAP
from signals_stream.batch.dialects import DialectName, SqlDialect
from signals_stream.batch.filters import criteria_predicate, selectors_predicate
from signals_stream.batch.values import (
    TRUE,
    EventColumns,
    SqlValue,
    all_of,
    compile_value,
    null,
)
from signals_stream.definitions import AttributeGroup
from signals_stream.definitions.attributes import Attribute
from signals_stream.definitions.durations import duration_ms
from signals_stream.definitions.properties import AtomicProperty
from signals_stream.engine.windows import bucket_width_ms, effective_ttl
from signals_stream.errors import DefinitionError
from signals_stream.warehouse.sql import TableRef

__all__ = [
    "DEFAULT_EVENTS_TABLE",
    "batch_table",
    "parse_table_ref",
    "TIMESTAMP_COLUMN",
    "AnchorJoin",
    "BatchQuery",
    "EventsTable",
    "compile_at_anchors",
    "compile_from_state",
    "compile_group",
    "compile_state",
    "output_table_name",
]

DEFAULT_EVENTS_TABLE = TableRef(None, "atomic", "events")
TIMESTAMP_COLUMN = "computed_at"
_IDENTIFIER_LIMITS: dict[str, int] = {"postgres": 63}  # NAMEDATALEN - 1
_MAX_ID_CHARS = 1024  # as the router: longer values are not identifiers
_KEYED = frozenset({"unique_list", "most_frequent", "least_frequent", "category_count"})
_INT_TYPES = frozenset({"int32", "int64"})
_FLOAT_TYPES = frozenset({"double", "float"})
_SQL_TYPES = {
    "string": "text",
    "bytes": "text",
    "int32": "bigint",
    "int64": "bigint",
    "double": "double",
    "float": "double",
    "bool": "boolean",
    "timestamp": "timestamptz",
    "unix_timestamp": "timestamptz",
}


def output_table_name(group: AttributeGroup) -> str:
    """``<group>_<version>_attributes``, the table ``batch run`` writes."""
    return f"{group.name}_{group.version}_attributes"


def batch_table(group: AttributeGroup, schema: str) -> TableRef:
    """Where ``batch run`` writes ``group`` (and the sync reads it from)."""
    return TableRef(None, schema, output_table_name(group))


def parse_table_ref(text: str) -> TableRef:
    """``[database.]schema.table`` (``SIGNALS_BATCH_EVENTS_TABLE``, ``--events-table``).

    Raises:
        DefinitionError: not two or three dot-separated names.
    """
    parts = text.split(".")
    if len(parts) not in (2, 3) or not all(parts):
        raise DefinitionError(f"events table: {text!r} is not [database.]schema.table")
    return TableRef(parts[0] if len(parts) == 3 else None, parts[-2], parts[-1])


@dataclass(frozen=True)
class EventsTable:
    """The atomic events table: where it is and its columns (name -> type)."""

    ref: TableRef
    columns: EventColumns

    @classmethod
    def of(cls, ref: TableRef, types: dict[str, str], dialect: DialectName) -> EventsTable:
        limit = _IDENTIFIER_LIMITS.get(dialect)
        return cls(ref, EventColumns(types, identifier_limit=limit))


@dataclass(frozen=True)
class AnchorJoin:
    """Where a dataset's anchors are: a table with a text id column, the group key's column
    and a timestamp column; events older than ``lookback_ms`` before an anchor are not read."""

    table: TableRef
    id_column: str
    key_column: str
    time_column: str
    lookback_ms: int | None = None


ANCHOR_ID = "anchor_id"


@dataclass(frozen=True)
class BatchQuery:
    """A compiled group: the query, its dialect and its output columns."""

    group: AttributeGroup
    dialect: DialectName
    expression: exp.Expr
    key_column: str
    attribute_columns: tuple[str, ...]
    column_types: dict[str, str] = field(default_factory=dict)  # attribute -> declared type
    timestamp_column: str = TIMESTAMP_COLUMN

    @property
    def sql(self) -> str:
        return self.expression.sql(dialect=self.dialect, pretty=True)


def timestamp_literal(ms: int) -> exp.Expr:
    """An instant (epoch ms) as a ``TIMESTAMPTZ`` literal in UTC."""
    text = datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00:00")
    return exp.cast(exp.Literal.string(text), exp.DataType.build("timestamptz"))


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table, quoted=True)


def _lit(n: int) -> exp.Expr:
    return exp.Literal.number(n)


def _not_null(node: exp.Expr) -> exp.Expr:
    return exp.Not(this=exp.Is(this=node.copy(), expression=exp.Null()))


def _sql_type(attr_type: str) -> exp.DataType:
    return exp.DataType.build(_SQL_TYPES[attr_type])


def _element_type(attr_type: str) -> str:
    return attr_type.removesuffix("_list")


@dataclass
class _Plan:
    """One attribute's pieces of the query."""

    index: int
    attribute: Attribute
    ttl_ms: int | None
    value: exp.Expr | None  # what the reducer aggregates (declared type), if any
    key: exp.Expr | None  # the value's key text (frequency, unique list)

    def name(self, what: str) -> str:
        return f"__{what}_{self.index}"


class _Compiler:
    def __init__(
        self,
        group: AttributeGroup,
        table: EventsTable,
        dialect: DialectName,
        now_ms: int | None,
        loaded: tuple[int | None, int] | None = None,
        anchors: AnchorJoin | None = None,
        collected: tuple[int, int] | None = None,
    ) -> None:
        self.loaded = loaded
        self.anchors = anchors
        self.collected = collected
        self.group = group
        self.table = table
        self.sql = SqlDialect(dialect)
        self.columns = table.columns
        self.now: exp.Expr = (
            self.sql.call("epoch_ms", exp.CurrentTimestamp()) if now_ms is None else _lit(now_ms)
        )
        if anchors is not None:
            self.now = _col("__now")
        self.now_ms = now_ms

    # -- per event ------------------------------------------------------------------------

    def _typed(self, value: SqlValue, attr_type: str) -> exp.Expr:
        """The value as the attribute's declared (element) type; NULL when it is not one."""
        if attr_type in ("string", "bytes"):
            return value.text
        if attr_type in _INT_TYPES:
            return exp.cast(value.number.copy(), exp.DataType.build("bigint"))
        if attr_type in _FLOAT_TYPES:
            return value.number
        if attr_type == "bool":
            return value.boolean
        return value.timestamp

    def _plan(self, index: int, attribute: Attribute) -> _Plan:
        group = self.group
        ttl = effective_ttl(
            *(
                None if d is None else duration_ms(d)
                for d in (attribute.ttl, group.ttl, group.attribute_key.ttl)
            )
        )
        agg = attribute.aggregation
        value_expr: exp.Expr | None = None
        key_expr: exp.Expr | None = None
        if agg not in ("counter", "time_since_first", "time_since_last"):
            value = compile_value(self.sql, self.columns, attribute.property)
            if agg in ("sum", "mean"):
                value_expr = value.number
            elif agg in ("min", "max"):
                numeric = attribute.type in _INT_TYPES | _FLOAT_TYPES
                value_expr = value.number if numeric else value.timestamp
            elif agg == "approx_count_distinct":
                value_expr = value.text
            elif agg == "category_count":
                value_expr = key_expr = value.text
            else:  # first, last, most/least_frequent, unique_list
                value_expr = self._typed(value, _element_type(attribute.type))
                key_expr = value.text
        return _Plan(index, attribute, ttl, value_expr, key_expr)

    def _takes(self, attribute: Attribute) -> exp.Expr:
        """The event reaches the attribute's reducer: selected, criteria hold, and (for
        reducers that skip nulls) the property is present."""
        selected = selectors_predicate(self.sql, self.columns, attribute.events)
        passes = criteria_predicate(self.sql, self.columns, attribute.criteria)
        skips_none = attribute.aggregation not in ("counter", "time_since_first", "time_since_last")
        present = TRUE
        if skips_none:
            present = compile_value(self.sql, self.columns, attribute.property).present
        return all_of(selected, passes, present)

    def _source(self, plans: list[_Plan]) -> exp.Select:
        key = self.group.attribute_key
        source = key.source
        if source is None:
            raise DefinitionError(
                f"attribute_key: {key.name!r} has no property to read ids from in events"
            )
        key_value = compile_value(self.sql, self.columns, source)
        event_time = compile_value(
            self.sql, self.columns, AtomicProperty(name="derived_tstamp")
        ).timestamp
        collector = compile_value(
            self.sql, self.columns, AtomicProperty(name="collector_tstamp")
        ).timestamp
        t = self.sql.call("epoch_ms", exp.Coalesce(this=event_time, expressions=[collector]))
        eid = exp.cast(_col("event_id"), exp.DataType.build("text"))
        selects: list[exp.Expr] = [
            exp.alias_(key_value.text, "__id" if self.anchors is None else "__key", quoted=True),
            exp.alias_(t, "__t", quoted=True),
            exp.alias_(eid, "__eid", quoted=True),
        ]
        if self.anchors is not None:
            arrived = self.sql.call("epoch_ms", collector.copy())
            selects.append(exp.alias_(arrived, "__ct", quoted=True))
        for plan in plans:
            selects.append(exp.alias_(self._takes(plan.attribute), plan.name("take"), quoted=True))
            if plan.value is not None:
                selects.append(exp.alias_(plan.value, plan.name("v"), quoted=True))
            if plan.key is not None and plan.key is not plan.value:
                selects.append(exp.alias_(plan.key, plan.name("k"), quoted=True))
        return exp.select(*selects).from_("__raw").where(_not_null(_col("event_id")))

    def _raw(self) -> exp.Select:
        """The events with the shared JSON lookups computed once (``SqlDialect.hoist``)."""
        ref = self.table.ref
        lookups = [exp.alias_(node, name, quoted=True) for name, node in self.sql.hoisted.values()]
        raw = exp.select(exp.Star(), *lookups).from_(
            exp.table_(ref.table, db=ref.schema, catalog=ref.database, quoted=True)
        )
        if self.loaded is not None:  # an incremental run: the events loaded in (after, until]
            after, until = self.loaded
            loaded = _col("load_tstamp")
            raw = raw.where(exp.LTE(this=loaded, expression=timestamp_literal(until)), copy=False)
            if after is not None:
                raw = raw.where(
                    exp.GT(this=loaded.copy(), expression=timestamp_literal(after)), copy=False
                )
        if self.collected is not None:  # a warehouse backfill: collected in [since, cut)
            since, cut = self.collected
            collector = _col("collector_tstamp")
            raw = raw.where(
                exp.GTE(this=collector, expression=timestamp_literal(since)), copy=False
            ).where(exp.LT(this=collector.copy(), expression=timestamp_literal(cut)), copy=False)
        return raw

    def _at_anchors(self, anchors: AnchorJoin, source: exp.Select) -> list[tuple[str, exp.Expr]]:
        """``__events``, ``__anc`` and ``__src``: each anchor with its entity's events before
        it (``collector_tstamp < T`` and event time ``< T``), or one empty row."""
        ref = anchors.table
        anc = exp.select(
            exp.alias_(
                exp.cast(_col(anchors.id_column), exp.DataType.build("text")), "__id", quoted=True
            ),
            exp.alias_(
                exp.cast(_col(anchors.key_column), exp.DataType.build("text")), "__key", quoted=True
            ),
            exp.alias_(self.sql.call("epoch_ms", _col(anchors.time_column)), "__now", quoted=True),
        ).from_(exp.table_(ref.table, db=ref.schema, catalog=ref.database, quoted=True))
        at = _col("__now", "__anc")
        on: list[exp.Expr] = [
            exp.EQ(this=_col("__key", "__events"), expression=_col("__key", "__anc")),
            exp.LT(this=_col("__ct", "__events"), expression=at.copy()),
            exp.LT(this=_col("__t", "__events"), expression=at.copy()),
        ]
        if anchors.lookback_ms is not None:
            oldest = exp.Sub(this=at.copy(), expression=_lit(anchors.lookback_ms))
            on.append(exp.GTE(this=_col("__t", "__events"), expression=oldest))
        carried = [s.alias_or_name for s in source.selects if s.alias_or_name != "__key"]
        joined = (
            exp.select(
                _col("__id", "__anc"),
                _col("__now", "__anc"),
                *(_col(name, "__events") for name in carried),
            )
            .from_("__anc")
            .join("__events", on=all_of(*on), join_type="left")
        )
        return [("__events", source), ("__anc", anc), ("__src", joined)]

    def _key_column(self, plan: _Plan) -> str:
        return plan.name("v") if plan.key is plan.value else plan.name("k")

    # -- windows and TTLs -------------------------------------------------------------------

    def _in_period(self, plan: _Plan) -> exp.Expr:
        period = plan.attribute.period
        if period is None:
            return TRUE
        period_ms = duration_ms(period)
        width = bucket_width_ms(period_ms)
        t = _col("__t")
        bucket = exp.Sub(this=t, expression=exp.Mod(this=t.copy(), expression=_lit(width)))
        lowest = exp.Sub(this=self.now.copy(), expression=_lit(period_ms + width))
        return all_of(
            exp.GT(this=bucket, expression=lowest),
            exp.LTE(this=bucket.copy(), expression=self.now.copy()),
        )

    def _counted(self, plan: _Plan, *, in_period: bool = True) -> exp.Expr:
        """The event is in the attribute's value at ``now``: taken, after the state's last
        TTL restart, inside the rolling period (``in_period=False``: in any bucket)."""
        parts: list[exp.Expr] = [_col(plan.name("take"))]
        if plan.ttl_ms is not None:
            parts.append(exp.GTE(this=_col("__t"), expression=_col(plan.name("restart"))))
        return all_of(*parts, self._in_period(plan) if in_period else TRUE)

    def _restarts(
        self, source: exp.Select, plans: list[_Plan]
    ) -> tuple[str, list[tuple[str, exp.Expr]]]:
        """CTEs marking, per TTL'd attribute, the time its state last started again."""
        ttl_plans = [p for p in plans if p.ttl_ms is not None]
        ctes: list[tuple[str, exp.Expr]] = [("__raw", self._raw())]
        if self.anchors is None:
            ctes.append(("__src", source))
        else:
            ctes += self._at_anchors(self.anchors, source)
        if not ttl_plans:
            return "__src", ctes
        gaps: list[exp.Expr] = [exp.Star()]
        for plan in ttl_plans:
            take = _col(plan.name("take"))
            window = exp.Window(
                this=exp.Anonymous(this="LAG", expressions=[_col("__t")]),
                partition_by=[_col("__id"), take.copy()],
                order=exp.Order(
                    expressions=[exp.Ordered(this=_col("__t")), exp.Ordered(this=_col("__eid"))]
                ),
            )
            gap = exp.Sub(this=_col("__t"), expression=window)
            starts = exp.Case().when(
                all_of(
                    take.copy(),
                    exp.or_(
                        exp.Is(this=window.copy(), expression=exp.Null()),
                        exp.GTE(this=gap, expression=_lit(plan.ttl_ms or 0)),
                    ),
                ),
                _col("__t"),
            )
            gaps.append(exp.alias_(starts, plan.name("start"), quoted=True))
        ctes.append(("__gaps", exp.select(*gaps).from_("__src")))
        restarts: list[exp.Expr] = [exp.Star()]
        for plan in ttl_plans:
            latest = exp.Window(
                this=exp.Max(this=_col(plan.name("start"))), partition_by=[_col("__id")]
            )
            restarts.append(exp.alias_(latest, plan.name("restart"), quoted=True))
        ctes.append(("__ev", exp.select(*restarts).from_("__gaps")))
        return "__ev", ctes

    # -- aggregation --------------------------------------------------------------------------

    def _when(self, cond: exp.Expr, value: exp.Expr) -> exp.Expr:
        return exp.Case().when(cond, value)

    def _aggregate(self, plan: _Plan) -> exp.Expr | None:
        """The per-entity aggregate of a non-keyed attribute (the reducer's result)."""
        agg = plan.attribute.aggregation
        counted = self._counted(plan)
        v = _col(plan.name("v"))
        t = _col("__t")
        if agg == "counter":
            count = exp.Count(this=self._when(counted, _lit(1)))
            return exp.Nullif(this=count, expression=_lit(0))
        if agg == "sum":
            return exp.Sum(this=self._when(counted, v))
        if agg == "mean":
            return exp.Avg(this=self._when(counted, v))
        if agg == "min":
            return exp.Min(this=self._when(counted, v))
        if agg == "max":
            return exp.Max(this=self._when(counted, v))
        if agg == "approx_count_distinct":
            distinct = exp.Count(this=exp.Distinct(expressions=[self._when(counted, v)]))
            return exp.Nullif(this=distinct, expression=_lit(0))
        if agg in ("first", "last"):
            template = "pick_first" if agg == "first" else "pick_last"
            return self.sql.call(template, v, t, _col("__eid"), exp.paren(counted))
        if agg in ("time_since_first", "time_since_last"):
            pick: type[exp.Min] | type[exp.Max] = exp.Min if agg == "time_since_first" else exp.Max
            since = pick(this=self._when(counted, t))
            elapsed = exp.Greatest(
                this=_lit(0), expressions=[exp.Sub(this=self.now.copy(), expression=since)]
            )
            unit = exp.Literal.number(f"{float(time_unit_ms(plan.attribute.time_unit))}")
            return exp.Div(this=exp.cast(elapsed, exp.DataType.build("double")), expression=unit)
        return None

    def _keyed(self, plan: _Plan, events: str) -> exp.Select:
        """Per entity, the result of a frequency or unique-list attribute."""
        agg = plan.attribute.aggregation
        v, k = _col(plan.name("v")), _col(self._key_column(plan))
        values = (
            exp.select(
                exp.alias_(_col("__id"), "__id", quoted=True),
                exp.alias_(v, "v", quoted=True),
                exp.alias_(k.copy(), "k", quoted=True),
                exp.alias_(exp.Count(this=exp.Star()), "n", quoted=True),
                exp.alias_(exp.Max(this=_col("__t")), "seen", quoted=True),
            )
            .from_(events)
            .where(all_of(self._counted(plan), _not_null(v.copy())))
            .group_by(_col("__id"), v.copy(), k.copy())
        )
        key = self.sql.call("text_order", _col("k"))
        if agg == "unique_list":  # the 100 most recently seen, ties by key
            order = [exp.Ordered(this=_col("seen"), desc=True), exp.Ordered(this=key, desc=True)]
            cap = UNIQUE_LIST_CAP
        elif agg == "least_frequent":
            order = [exp.Ordered(this=_col("n")), exp.Ordered(this=key)]
            cap = 1
        else:  # most_frequent, category_count: highest counts, ties by the smallest key
            order = [exp.Ordered(this=_col("n"), desc=True), exp.Ordered(this=key)]
            cap = 1 if agg == "most_frequent" else FREQUENCY_CAP
        rank = exp.Window(
            this=exp.RowNumber(), partition_by=[_col("__id")], order=exp.Order(expressions=order)
        )
        ranked = exp.select(exp.Star(), exp.alias_(rank, "r", quoted=True)).from_(
            exp.paren(values).as_("__vals")
        )
        if agg in ("most_frequent", "least_frequent"):
            return (
                exp.select(_col("__id"), exp.alias_(_col("v"), "value", quoted=True))
                .from_(exp.paren(ranked).as_("__ranked"))
                .where(exp.EQ(this=_col("r"), expression=_lit(1)))
            )
        if agg == "unique_list":
            result = self.sql.call("ordered_list", _col("v"), _col("seen"), _col("k"))
        else:
            result = self.sql.call("object_agg", _col("k"), _col("n"))
        return (
            exp.select(_col("__id"), exp.alias_(result, "value", quoted=True))
            .from_(exp.paren(ranked).as_("__ranked"))
            .where(exp.LTE(this=_col("r"), expression=_lit(cap)))
            .group_by(_col("__id"))
        )

    # -- output -------------------------------------------------------------------------------

    def _default(self, attribute: Attribute) -> exp.Expr:
        value = attribute.default_value
        kind = attribute.type
        if value is None:
            agg = attribute.aggregation
            if agg in ("counter", "sum", "approx_count_distinct"):
                return exp.Literal.number("0.0" if kind in _FLOAT_TYPES else "0")
            if agg == "unique_list":
                return self._list_literal((), kind)
            if agg == "category_count":
                return self.sql.call("empty_object")
            return null()
        if isinstance(value, tuple):
            return self._list_literal(value, kind)
        return self._scalar_literal(value, kind)

    def _scalar_literal(self, value: str | int | float | bool, kind: str) -> exp.Expr:
        if isinstance(value, bool):
            return exp.Boolean(this=value)
        if kind in ("timestamp", "unix_timestamp"):
            if isinstance(value, str):
                return exp.cast(exp.Literal.string(value), _sql_type(kind))
            return exp.UnixToTime(this=exp.Literal.number(value))
        if isinstance(value, int | float):
            return exp.cast(exp.Literal.number(value), _sql_type(kind))
        return exp.cast(exp.Literal.string(value), _sql_type(kind))

    def _list_literal(self, values: tuple[str | int | float | bool, ...], kind: str) -> exp.Expr:
        element = _element_type(kind)
        array = exp.Array(expressions=[self._scalar_literal(v, element) for v in values])
        return exp.cast(array, exp.DataType.build(f"ARRAY<{_SQL_TYPES[element]}>"))

    def _output(self, plan: _Plan, result: exp.Expr) -> exp.Expr:
        attribute = plan.attribute
        if plan.ttl_ms is not None:  # expired at now: reads as no value
            now = self.now.copy() if self.anchors is None else _col("__now", "__agg")
            age = exp.Sub(this=now, expression=_col(plan.name("last"), "__agg"))
            result = exp.Case().when(exp.LT(this=age, expression=_lit(plan.ttl_ms)), result)
        kind = attribute.type
        if attribute.aggregation not in _KEYED and kind in _SQL_TYPES:
            result = exp.cast(result, _sql_type(kind))
        return exp.Coalesce(this=result, expressions=[self._default(attribute)])

    def _plans(self) -> list[_Plan]:
        attributes = self.group.attributes or ()
        if not attributes:
            raise DefinitionError(
                f"attribute group {self.group.full_name}: only groups with attributes compile"
            )
        return [self._plan(i, a) for i, a in enumerate(attributes)]

    def _entities(self, plans: list[_Plan], per_entity: list[exp.Expr], events: str) -> exp.Select:
        """``__agg``: one row per entity some attribute took an event of (at anchors: one
        row per anchor, with its time)."""
        if self.anchors is not None:
            return (
                exp.select(_col("__id"), _col("__now"), *per_entity)
                .from_(events)
                .group_by(_col("__id"), _col("__now"))
            )
        taken = (
            exp.or_(*(_col(p.name("take")) for p in plans))
            if len(plans) > 1
            else _col(plans[0].name("take"))
        )
        return (
            exp.select(_col("__id"), *per_entity)
            .from_(events)
            .where(
                all_of(
                    _not_null(_col("__id")),
                    exp.NEQ(this=_col("__id"), expression=exp.Literal.string("")),
                    exp.LTE(this=exp.Length(this=_col("__id")), expression=_lit(_MAX_ID_CHARS)),
                )
            )
            .group_by(_col("__id"))
            .having(exp.GT(this=exp.Count(this=self._when(taken, _lit(1))), expression=_lit(0)))
        )

    def _state_columns(self, plan: _Plan, counted: exp.Expr) -> list[exp.Expr]:
        """``plan``'s state columns (``batch.incremental``) over the events ``counted`` marks."""
        from signals_stream.batch.incremental import state_aggregates

        value = _col(plan.name("v"))
        return [
            exp.alias_(aggregate, column, quoted=True)
            for column, aggregate in state_aggregates(self.sql, plan.attribute, value, counted)
        ]

    def compile_state(self) -> exp.Select:
        """Per entity, the reducers' states of an incremental group (``batch.incremental``),
        over the events of ``loaded``."""
        plans = self._plans()
        source = self._source(plans)
        events, ctes = self._restarts(source, plans)
        per_entity: list[exp.Expr] = []
        for plan in plans:
            per_entity += self._state_columns(plan, self._counted(plan))
        ctes.append(("__agg", self._entities(plans, per_entity, events)))
        query = exp.select(
            exp.alias_(_col("__id"), self.group.attribute_key.name, quoted=True),
            *(exp.column(e.alias, quoted=True) for e in per_entity),
        ).from_("__agg")
        for name, body in ctes:
            query = query.with_(name, as_=body, copy=False)
        return query

    def finalize(self, state: exp.Expr, result: dict[str, exp.Expr]) -> exp.Select:
        """The output rows from per-entity results (``incremental``: from a state table)."""
        key_name = self.group.attribute_key.name
        outputs: list[exp.Expr] = [exp.column(key_name, quoted=True)]
        for plan in self._plans():
            name = plan.attribute.name
            outputs.append(exp.alias_(self._output(plan, result[name]), name, quoted=True))
        outputs.append(exp.alias_(self._computed_at(), TIMESTAMP_COLUMN, quoted=True))
        return exp.select(*outputs).from_(state)

    def compile(self) -> BatchQuery:
        plans = self._plans()
        attributes = self.group.attributes or ()
        source = self._source(plans)
        events, ctes = self._restarts(source, plans)
        keyed = [p for p in plans if p.attribute.aggregation in _KEYED]
        per_entity: list[exp.Expr] = []
        for plan in plans:
            if plan.attribute.aggregation not in _KEYED:
                aggregate = self._aggregate(plan)
                assert aggregate is not None
                per_entity.append(exp.alias_(aggregate, plan.name("res"), quoted=True))
            if plan.ttl_ms is not None:
                last = exp.Max(this=self._when(_col(plan.name("take")), _col("__t")))
                per_entity.append(exp.alias_(last, plan.name("last"), quoted=True))
        agg = self._entities(plans, per_entity, events)
        ctes.append(("__agg", agg))
        for plan in keyed:
            ctes.append((plan.name("keyed"), self._keyed(plan, events)))
        key_name = self.group.attribute_key.name if self.anchors is None else ANCHOR_ID
        outputs: list[exp.Expr] = [exp.alias_(_col("__id", "__agg"), key_name, quoted=True)]
        for plan in plans:
            if plan.attribute.aggregation in _KEYED:
                result: exp.Expr = _col("value", plan.name("keyed"))
            else:
                result = _col(plan.name("res"), "__agg")
            outputs.append(exp.alias_(self._output(plan, result), plan.attribute.name, quoted=True))
        if self.anchors is None:
            outputs.append(exp.alias_(self._computed_at(), TIMESTAMP_COLUMN, quoted=True))
        query = exp.select(*outputs).from_("__agg")
        for plan in keyed:
            name = plan.name("keyed")
            query = query.join(
                exp.to_identifier(name, quoted=True),
                on=exp.EQ(this=_col("__id", name), expression=_col("__id", "__agg")),
                join_type="left",
                copy=False,
            )
        for name, body in ctes:
            query = query.with_(name, as_=body, copy=False)
        return BatchQuery(
            group=self.group,
            dialect=self.sql.name,
            expression=query,
            key_column=key_name,
            attribute_columns=tuple(a.name for a in attributes),
            column_types={a.name: a.type for a in attributes},
        )

    def _computed_at(self) -> exp.Expr:
        if self.now_ms is None:
            return exp.CurrentTimestamp()
        return timestamp_literal(self.now_ms)


def compile_group(
    group: AttributeGroup, table: EventsTable, *, dialect: DialectName, now_ms: int | None
) -> BatchQuery:
    """Compile ``group``'s attributes (a batch or a stream group) into one query.

    Args:
        group: the group; its key must read ids from events.
        table: the events table and its columns (for the self-describing columns present).
        dialect: ``duckdb``, ``postgres``, ``snowflake`` or ``bigquery``.
        now_ms: the clock rolling periods, ``time_since_*`` and TTLs are read at; ``None``
            uses the warehouse's ``CURRENT_TIMESTAMP`` when the query runs.

    Raises:
        DefinitionError: a definition with no SQL translation (named in the message).
    """
    return _Compiler(group, table, dialect, now_ms).compile()


def compile_at_anchors(
    group: AttributeGroup, table: EventsTable, anchors: AnchorJoin, *, dialect: DialectName
) -> BatchQuery:
    """Compile ``group``'s attributes as of each anchor of ``anchors``: one row per anchor
    (``anchor_id`` and one column per attribute), each value read at the anchor's time from
    the events strictly before it (``docs/semantics.md``, "Training datasets").

    Raises:
        DefinitionError: a definition with no SQL translation (named in the message).
    """
    return _Compiler(group, table, dialect, None, anchors=anchors).compile()


def compile_state(
    group: AttributeGroup,
    table: EventsTable,
    *,
    dialect: DialectName,
    loaded: tuple[int | None, int] | None = None,
    collected: tuple[int, int] | None = None,
) -> exp.Select:
    """Per entity, the reducer states of an incremental group over the events whose
    ``load_tstamp`` is in ``(loaded[0], loaded[1]]`` (``batch.incremental``) and whose
    ``collector_tstamp`` is in ``[collected[0], collected[1])`` (``batch.backfill_states``)."""
    return _Compiler(group, table, dialect, None, loaded, collected=collected).compile_state()


def compile_from_state(
    group: AttributeGroup,
    table: EventsTable,
    state: exp.Expr,
    *,
    dialect: DialectName,
    now_ms: int,
) -> exp.Select:
    """The output rows of an incremental group from its merged state table ``state``."""
    from signals_stream.batch.incremental import state_results

    compiler = _Compiler(group, table, dialect, now_ms)
    return compiler.finalize(state, state_results(group, compiler.now))
