"""The SQL of a warehouse backfill: a stream group's reducer states over ``[since, cut)``. Pure.

One query per state shape, each over the events collected in ``[since, cut)`` and each with
the compiler's per-event source (``batch.compile``: selectors, criteria, values, TTL restarts
judged on event time):

- ``entity``: lifetime ``counter``/``sum``/``mean``/``min``/``max``/``first``/``last``/
  ``time_since_*``: one row per entity, the ``batch.incremental`` state columns;
- ``buckets``: one query per such attribute with a ``period``: one row per entity and bucket
  of the stream's width (``engine.windows.bucket_width_ms``), the same state columns;
- ``values``: one query per ``unique_list``, ``most_frequent``, ``least_frequent``,
  ``category_count`` or ``approx_count_distinct``: one row per entity, bucket (periods only)
  and distinct value, with the value's kind and text (to rebuild the stream's value key),
  its count and its last sighting (event time).

Every row also has ``__u``, the latest event time the attribute took (a TTL'd slot's update
time when judged on event time). Buckets older than the period of an entity's newest bucket
are left out, as the stream's window prunes them; events more than
``engine.fold.FUTURE_TOLERANCE_MS`` after ``now`` are kept out of periods, as the stream does.
``batch.backfill_states`` turns the rows into the reducers' states.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from sqlglot import exp

from signals_stream.batch.compile import EventsTable, _Compiler, _Plan
from signals_stream.batch.dialects import DialectName
from signals_stream.batch.values import all_of, compile_value
from signals_stream.definitions import AttributeGroup
from signals_stream.definitions.attributes import Attribute
from signals_stream.definitions.durations import duration_ms
from signals_stream.engine.fold import FUTURE_TOLERANCE_MS
from signals_stream.engine.windows import bucket_width_ms

__all__ = ["KEYED", "StateQuery", "backfill_queries"]

KEYED = frozenset(
    {"unique_list", "most_frequent", "least_frequent", "category_count", "approx_count_distinct"}
)
Shape = Literal["entity", "buckets", "values"]


@dataclass(frozen=True)
class StateQuery:
    """One query of a backfill: its shape, the attributes it gives states of, and its SQL."""

    shape: Shape
    attributes: tuple[Attribute, ...]
    expression: exp.Select
    period_ms: int | None = None

    def sql(self, dialect: DialectName) -> str:
        return self.expression.sql(dialect=dialect)

    @property
    def columns(self) -> list[str]:
        return [select.alias_or_name for select in self.expression.selects]


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table, quoted=True)


def _lit(n: int) -> exp.Expr:
    return exp.Literal.number(n)


def _when(cond: exp.Expr, value: exp.Expr) -> exp.Expr:
    return exp.Case().when(cond, value)


def _kind(c: _Compiler, attribute: Attribute) -> tuple[exp.Expr, exp.Expr]:
    """The value's kind (``s`` text, ``b`` bool, ``n`` number, ``t`` timestamp, ``j`` other)
    and its text: with them the stream's value key (``aggregations.encode_value``) is
    rebuilt exactly."""
    value = compile_value(c.sql, c.columns, attribute.property)
    kind = (
        exp.Case()
        .when(value.is_text, exp.Literal.string("s"))
        .when(value.is_bool, exp.Literal.string("b"))
        .when(value.is_number, exp.Literal.string("n"))
        .when(value.is_timestamp, exp.Literal.string("t"))
        .else_(exp.Literal.string("j"))
    )
    return kind, value.text


def _period_ms(plan: _Plan) -> int:
    period = plan.attribute.period
    assert period is not None
    return duration_ms(period)


def _valid_id() -> exp.Expr:
    """The router's rule for an entity id (as ``_Compiler._entities``)."""
    identifier = _col("__id")
    return all_of(
        exp.Not(this=exp.Is(this=identifier, expression=exp.Null())),
        exp.NEQ(this=identifier.copy(), expression=exp.Literal.string("")),
        exp.LTE(this=exp.Length(this=identifier.copy()), expression=_lit(1024)),
    )


class _Builder(_Compiler):
    """The compiler's per-event source and TTL restarts, grouped by state shape."""

    def __init__(
        self, group: AttributeGroup, table: EventsTable, dialect: DialectName, *,
        since_ms: int, cut_ms: int, now_ms: int, retention: Mapping[str, int | None] | None,
    ) -> None:  # fmt: skip
        super().__init__(group, table, dialect, now_ms, collected=(since_ms, cut_ms))
        self.all_plans = self._plans()
        for plan in self.all_plans:  # restarts as the slot's (maybe shared) retention says
            if retention is not None and plan.attribute.name in retention:
                plan.ttl_ms = retention[plan.attribute.name]
        source = self._source(self.all_plans)
        for plan in self.all_plans:  # the value key's parts, before the hoisted lookups are read
            if plan.attribute.aggregation in KEYED:
                kind, text = _kind(self, plan.attribute)
                source = source.select(
                    exp.alias_(kind, plan.name("kk"), quoted=True),
                    exp.alias_(text, plan.name("kt"), quoted=True),
                    copy=False,
                )
        self.events, self.ctes = self._restarts(source, self.all_plans)
        self.horizon_ms = now_ms + FUTURE_TOLERANCE_MS

    def _with(self, query: exp.Select, extra: list[tuple[str, exp.Expr]]) -> exp.Select:
        for name, body in [*self.ctes, *extra]:
            query = query.with_(name, as_=body.copy(), copy=False)
        return query

    def _state_counted(self, plan: _Plan) -> exp.Expr:
        counted = self._counted(plan, in_period=False)  # every bucket is state
        if plan.attribute.period is None:
            return counted
        return all_of(counted, exp.LTE(this=_col("__t"), expression=_lit(self.horizon_ms)))

    def _bucket(self, plan: _Plan) -> exp.Expr:
        width = bucket_width_ms(_period_ms(plan))
        t = _col("__t")
        return exp.Sub(this=t, expression=exp.Mod(this=t.copy(), expression=_lit(width)))

    def _last(self, counted: exp.Expr) -> exp.Expr:
        return exp.alias_(exp.Max(this=_when(counted, _col("__t"))), "__u", quoted=True)

    def entity(self, plans: list[_Plan]) -> StateQuery:
        per_entity: list[exp.Expr] = []
        for plan in plans:
            counted = self._state_counted(plan)
            per_entity += self._state_columns(plan, counted)
            last = exp.Max(this=_when(counted.copy(), _col("__t")))
            per_entity.append(exp.alias_(last, f"{plan.attribute.name}__u", quoted=True))
        agg = self._entities(plans, per_entity, self.events)
        query = exp.select(
            exp.alias_(_col("__id"), self.group.attribute_key.name, quoted=True),
            *(exp.column(e.alias, quoted=True) for e in per_entity),
        ).from_("__agg")
        attributes = tuple(p.attribute for p in plans)
        return StateQuery("entity", attributes, self._with(query, [("__agg", agg)]))

    def _pruned(self, plan: _Plan, grouped: exp.Select) -> exp.Select:
        """``grouped`` (per entity and ``__bucket``) without the buckets the stream would
        have pruned: those older than the period of the entity's newest bucket."""
        period_ms = _period_ms(plan)
        width = bucket_width_ms(period_ms)
        newest = exp.Window(this=exp.Max(this=_col("__bucket")), partition_by=[_col("__id")])
        marked = exp.select(exp.Star(), exp.alias_(newest, "__newest", quoted=True)).from_(
            exp.paren(grouped).as_("__g")
        )
        oldest = exp.Sub(this=_col("__newest"), expression=_lit(period_ms + width))
        return (
            exp.select(*(_col(s.alias_or_name) for s in grouped.selects))
            .from_(exp.paren(marked).as_("__m"))
            .where(exp.GT(this=_col("__bucket"), expression=oldest))
        )

    def buckets(self, plan: _Plan) -> StateQuery:
        counted = self._state_counted(plan)
        bucket = self._bucket(plan)
        grouped = (
            exp.select(
                exp.alias_(_col("__id"), "__id", quoted=True),
                exp.alias_(bucket, "__bucket", quoted=True),
                *self._state_columns(plan, counted),
                self._last(counted),
            )
            .from_(self.events)
            .where(all_of(counted.copy(), _valid_id()))
            .group_by(_col("__id"), bucket.copy())
        )
        period_ms = _period_ms(plan)
        query = self._with(self._pruned(plan, grouped), [])
        return StateQuery("buckets", (plan.attribute,), query, period_ms)

    def values(self, plan: _Plan) -> StateQuery:
        counted = self._state_counted(plan)
        kind, text = _col(plan.name("kk")), _col(plan.name("kt"))
        keys: list[exp.Expr] = [_col("__id")]
        selects: list[exp.Expr] = [exp.alias_(_col("__id"), "__id", quoted=True)]
        period_ms = None
        if plan.attribute.period is not None:
            period_ms = _period_ms(plan)
            keys.append(self._bucket(plan))
            selects.append(exp.alias_(self._bucket(plan), "__bucket", quoted=True))
        grouped = (
            exp.select(
                *selects,
                exp.alias_(kind, "__kind", quoted=True),
                exp.alias_(text, "__text", quoted=True),
                exp.alias_(exp.Count(this=exp.Star()), "__n", quoted=True),
                exp.alias_(exp.Max(this=_col("__t")), "__u", quoted=True),
            )
            .from_(self.events)
            .where(
                all_of(
                    counted,
                    exp.Not(this=exp.Is(this=text.copy(), expression=exp.Null())),
                    _valid_id(),
                )
            )
            .group_by(*keys, kind.copy(), text.copy())
        )
        query = grouped if period_ms is None else self._pruned(plan, grouped)
        return StateQuery("values", (plan.attribute,), self._with(query, []), period_ms)


def backfill_queries(
    group: AttributeGroup,
    table: EventsTable,
    *,
    dialect: DialectName,
    since_ms: int,
    cut_ms: int,
    now_ms: int,
    retention: Mapping[str, int | None] | None = None,
) -> list[StateQuery]:
    """The queries giving ``group``'s reducer states over the events with ``since_ms <=
    collector_tstamp < cut_ms`` (``now_ms``: the clock that bounds future events).

    ``retention``: per attribute name, its slot's retention (``engine.catalog.Slot``: the
    longest TTL of the attributes sharing the state, None when one has none), which decides
    where the state starts again; default each attribute's own TTL.

    Raises:
        DefinitionError: a definition with no SQL translation (named in the message).
    """
    builder = _Builder(
        group, table, dialect, since_ms=since_ms, cut_ms=cut_ms, now_ms=now_ms,
        retention=retention,
    )  # fmt: skip
    scalar = [
        p
        for p in builder.all_plans
        if p.attribute.aggregation not in KEYED and p.attribute.period is None
    ]
    out = [builder.entity(scalar)] if scalar else []
    for plan in builder.all_plans:
        if plan.attribute.aggregation in KEYED:
            out.append(builder.values(plan))
        elif plan.attribute.period is not None:
            out.append(builder.buckets(plan))
    return out
