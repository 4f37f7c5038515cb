"""Incremental batch runs: the reducers' states kept in the warehouse, new events merged in. Pure.

A group whose attributes are all lifetime (no ``period``), without a TTL, and aggregate with
``counter``, ``sum``, ``mean``, ``min``, ``max``, ``first``, ``last`` or ``time_since_*`` is
computed from a *state table* ``<group>_<version>_state``: per entity the same partial states
the stream's reducers keep (a count; a sum; an extreme; a value with its event time and id; an
event time). A run computes the states of the events loaded since the last run
(``load_tstamp`` in ``(watermark, now]``), merges them with the stored ones exactly as the
reducers' ``merge`` does (order does not matter, so late-loaded old events count right), and
writes the attributes from the merged states. Every other group (rolling periods, TTLs, lists,
frequencies, distinct counts) is recomputed in full.
"""

from __future__ import annotations

from sqlglot import exp

from signals_stream.batch.dialects import SqlDialect
from signals_stream.definitions import AttributeGroup
from signals_stream.definitions.attributes import Attribute

__all__ = [
    "INCREMENTAL_AGGREGATIONS",
    "merge_states",
    "not_incremental",
    "state_aggregates",
    "state_results",
]

INCREMENTAL_AGGREGATIONS = frozenset(
    {"counter", "sum", "mean", "min", "max", "first", "last", "time_since_first",
     "time_since_last"}
)  # fmt: skip


def not_incremental(group: AttributeGroup) -> str | None:
    """Why ``group`` must be recomputed in full (None: it can run incrementally)."""
    if group.ttl is not None or group.attribute_key.ttl is not None:
        return "the group has a TTL"
    for attribute in group.attributes or ():
        if attribute.period is not None:
            return f"attribute {attribute.name} has a period"
        if attribute.ttl is not None:
            return f"attribute {attribute.name} has a TTL"
        if attribute.aggregation not in INCREMENTAL_AGGREGATIONS:
            return f"attribute {attribute.name} aggregates with {attribute.aggregation}"
    return None


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table, quoted=True)


def _when(cond: exp.Expr, value: exp.Expr) -> exp.Expr:
    return exp.Case().when(cond, value)


def _name(attribute: Attribute, part: str) -> str:
    return f"{attribute.name}__{part}"


def state_aggregates(
    sql: SqlDialect, attribute: Attribute, value: exp.Expr, counted: exp.Expr
) -> list[tuple[str, exp.Expr]]:
    """The state columns of one attribute over the events ``counted`` marks (in ``__agg``);
    ``value`` is the compiler's column of the value it aggregates."""
    v, t, e = value, _col("__t"), _col("__eid")
    agg = attribute.aggregation
    if agg == "counter":
        return [(_name(attribute, "n"), exp.Count(this=_when(counted, exp.Literal.number(1))))]
    if agg == "mean":
        return [
            (_name(attribute, "s"), exp.Sum(this=_when(counted, v))),
            (_name(attribute, "n"), exp.Count(this=_when(counted, v.copy()))),
        ]
    if agg == "sum":
        return [(_name(attribute, "m"), exp.Sum(this=_when(counted, v)))]
    if agg in ("min", "max"):
        pick = exp.Min if agg == "min" else exp.Max
        return [(_name(attribute, "m"), pick(this=_when(counted, v)))]
    if agg in ("time_since_first", "time_since_last"):
        pick = exp.Min if agg == "time_since_first" else exp.Max
        return [(_name(attribute, "t"), pick(this=_when(counted, t)))]
    template = "pick_first" if agg == "first" else "pick_last"
    with_value = exp.paren(
        exp.and_(counted.copy(), exp.Not(this=exp.Is(this=v, expression=exp.Null())))
    )
    return [
        (_name(attribute, "v"), sql.call(template, v, t, e, with_value)),
        (_name(attribute, "t"), sql.call(template, t, t, e, with_value)),
        (_name(attribute, "e"), sql.call(template, e, t, e, with_value)),
    ]


def _extreme(old: exp.Expr, new: exp.Expr, new_wins: exp.Expr) -> exp.Expr:
    return (
        exp.Case()
        .when(exp.Is(this=old.copy(), expression=exp.Null()), new.copy())
        .when(exp.Is(this=new.copy(), expression=exp.Null()), old.copy())
        .when(new_wins, new.copy())
        .else_(old.copy())
    )


def merge_states(
    sql: SqlDialect, group: AttributeGroup, old: exp.Expr, new: exp.Expr
) -> exp.Select:
    """The merged state table: ``old`` (stored) FULL JOIN ``new`` (this run's events)."""
    key = group.attribute_key.name
    selects: list[exp.Expr] = [
        exp.alias_(
            exp.Coalesce(this=_col(key, "o"), expressions=[_col(key, "n")]), key, quoted=True
        )
    ]
    for attribute in group.attributes or ():
        agg = attribute.aggregation

        def both(part: str) -> tuple[exp.Expr, exp.Expr]:
            return _col(_name(attribute, part), "o"), _col(_name(attribute, part), "n")  # noqa: B023

        if agg in ("counter", "mean"):
            o, n = both("n")
            zero = exp.Literal.number(0)
            total = exp.Add(
                this=exp.Coalesce(this=o, expressions=[zero]),
                expression=exp.Coalesce(this=n, expressions=[zero.copy()]),
            )
            selects.append(exp.alias_(total, _name(attribute, "n"), quoted=True))
        if agg in ("sum", "mean"):
            part = "m" if agg == "sum" else "s"
            o, n = both(part)
            added = (
                exp.Case()
                .when(exp.Is(this=o.copy(), expression=exp.Null()), n.copy())
                .when(exp.Is(this=n.copy(), expression=exp.Null()), o.copy())
                .else_(exp.Add(this=o.copy(), expression=n.copy()))
            )
            selects.append(exp.alias_(added, _name(attribute, part), quoted=True))
        if agg in ("min", "max", "time_since_first", "time_since_last"):
            part = "m" if agg in ("min", "max") else "t"
            o, n = both(part)
            smaller = agg in ("min", "time_since_first")
            wins = exp.LT(this=n, expression=o) if smaller else exp.GT(this=n, expression=o)
            selects.append(exp.alias_(_extreme(o, n, wins), _name(attribute, part), quoted=True))
        if agg in ("first", "last"):
            (ot, nt), (oe, ne) = both("t"), both("e")
            before = exp.LT if agg == "first" else exp.GT
            tie = before(this=sql.call("text_order", ne), expression=sql.call("text_order", oe))
            new_wins = exp.or_(
                exp.Is(this=ot.copy(), expression=exp.Null()),
                exp.and_(
                    exp.Not(this=exp.Is(this=nt.copy(), expression=exp.Null())),
                    exp.paren(
                        exp.or_(
                            before(this=nt.copy(), expression=ot.copy()),
                            exp.and_(exp.EQ(this=nt.copy(), expression=ot.copy()), tie),
                        )
                    ),
                ),
            )
            for part in ("v", "t", "e"):
                o, n = both(part)
                chosen = exp.Case().when(new_wins.copy(), n).else_(o)
                selects.append(exp.alias_(chosen, _name(attribute, part), quoted=True))
    return (
        exp.select(*selects)
        .from_(exp.alias_(old, "o"))
        .join(
            exp.alias_(new, "n"),
            on=exp.EQ(this=_col(key, "o"), expression=_col(key, "n")),
            join_type="full",
        )
    )


def state_results(group: AttributeGroup, now: exp.Expr) -> dict[str, exp.Expr]:
    """Each attribute's reducer result from its state columns (before defaults and types)."""
    from signals_stream.aggregations import time_unit_ms

    out: dict[str, exp.Expr] = {}
    for attribute in group.attributes or ():
        agg = attribute.aggregation
        col = lambda part: _col(_name(attribute, part))  # noqa: E731, B023
        if agg == "counter":
            out[attribute.name] = exp.Nullif(this=col("n"), expression=exp.Literal.number(0))
        elif agg == "mean":
            share = exp.Div(
                this=exp.cast(col("s"), exp.DataType.build("double")),
                expression=exp.Nullif(this=col("n"), expression=exp.Literal.number(0)),
            )
            out[attribute.name] = share
        elif agg in ("sum", "min", "max"):
            out[attribute.name] = col("m")
        elif agg in ("first", "last"):
            out[attribute.name] = col("v")
        else:
            elapsed = exp.Greatest(
                this=exp.Literal.number(0),
                expressions=[exp.Sub(this=now.copy(), expression=col("t"))],
            )
            unit = exp.Literal.number(f"{float(time_unit_ms(attribute.time_unit))}")
            out[attribute.name] = exp.Div(
                this=exp.cast(elapsed, exp.DataType.build("double")), expression=unit
            )
    return out
