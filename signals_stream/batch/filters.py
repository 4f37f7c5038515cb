"""Event selectors and criteria as SQL predicates, with the stream's coercions. Pure.

A criterion compares the event's value with the comparand the way
``definitions.criteria`` does: by the *event value's* type (a string against a string, a
number against a number or a numeric string, a boolean against a boolean or ``"true"``, a
timestamp against an ISO 8601 string); a pair that cannot be compared is false (and ``!=`` of
it true); a null value makes every comparison false.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlglot import exp

from signals_stream.batch.dialects import SqlDialect
from signals_stream.batch.values import (
    FALSE,
    TRUE,
    EventColumns,
    SqlValue,
    all_of,
    any_of,
    compile_value,
)
from signals_stream.definitions.criteria import Criteria, Criterion
from signals_stream.definitions.evaluate import as_datetime
from signals_stream.definitions.selectors import EVENT_SPECIFICATION_SCHEMA, EventSelector
from signals_stream.errors import DefinitionError

__all__ = ["criteria_predicate", "selectors_predicate"]

Compare = Callable[[exp.Expr, exp.Expr], exp.Expr]
_ORDERING: dict[str, Compare] = {
    "=": lambda a, b: exp.EQ(this=a, expression=b),
    "<": lambda a, b: exp.LT(this=a, expression=b),
    ">": lambda a, b: exp.GT(this=a, expression=b),
    "<=": lambda a, b: exp.LTE(this=a, expression=b),
    ">=": lambda a, b: exp.GTE(this=a, expression=b),
}


def _column(name: str) -> exp.Column:
    return exp.column(name, quoted=True)


def _selector(sql: SqlDialect, columns: EventColumns, selector: EventSelector) -> exp.Expr:
    if selector.event_specification_id is not None:
        vendor, name, major = EVENT_SPECIFICATION_SCHEMA
        found = columns.versions("contexts", vendor, name, major)
        wanted = exp.Literal.string(selector.event_specification_id)
        return any_of(
            *(
                sql.call("json_any_id", sql.json_document(_column(c), columns.types[c]), wanted)
                for c in found
            )
        )
    parts = []
    for field, value in (
        ("event_vendor", selector.vendor),
        ("event_name", selector.name),
        ("event_version", selector.version),
    ):
        if value is not None:
            if field not in columns.types:
                return FALSE
            parts.append(exp.EQ(this=_column(field), expression=exp.Literal.string(value)))
    return all_of(*parts)


def selectors_predicate(
    sql: SqlDialect, columns: EventColumns, selectors: tuple[EventSelector, ...]
) -> exp.Expr:
    """Whether the event is selected (no selectors: every event)."""
    if not selectors:
        return TRUE
    return any_of(*(_selector(sql, columns, s) for s in selectors))


def _number_literal(value: float | int) -> exp.Expr:
    return exp.Literal.number(repr(float(value)) if isinstance(value, float) else value)


def _pair_test(
    sql: SqlDialect, value: SqlValue, comparand: str | int | float | bool, compare: Compare
) -> exp.Expr:
    """True when the value and the comparand form a comparable pair that ``compare`` accepts."""
    branches: list[exp.Expr] = []
    if isinstance(comparand, bool):
        branches.append(
            all_of(value.is_bool, compare(value.boolean.copy(), exp.Boolean(this=comparand)))
        )
        return any_of(*branches)
    if isinstance(comparand, int | float):
        number = _number_literal(comparand)
        branches.append(all_of(value.is_number, compare(value.number.copy(), number)))
        parsed = sql.call("safe_double", value.text.copy())
        branches.append(all_of(value.is_text, compare(parsed, number.copy())))
        return any_of(*branches)
    text = exp.Literal.string(comparand)
    branches.append(
        all_of(
            value.is_text,
            compare(sql.call("text_order", value.text.copy()), sql.call("text_order", text)),
        )
    )
    try:
        as_number: float | None = float(comparand)
    except ValueError:
        as_number = None
    if as_number is not None:
        branches.append(
            all_of(value.is_number, compare(value.number.copy(), _number_literal(as_number)))
        )
    flag = {"true": True, "false": False}.get(comparand.lower())
    if flag is not None:
        branches.append(
            all_of(value.is_bool, compare(value.boolean.copy(), exp.Boolean(this=flag)))
        )
    moment = as_datetime(comparand)
    if moment is not None:
        branches.append(
            all_of(value.is_timestamp, compare(value.timestamp.copy(), _timestamp_literal(moment)))
        )
    return any_of(*branches)


def _timestamp_literal(moment: datetime) -> exp.Expr:
    text = moment.strftime("%Y-%m-%d %H:%M:%S.%f+00:00")
    return exp.cast(exp.Literal.string(text), exp.DataType.build("timestamptz"))


def _criterion(sql: SqlDialect, columns: EventColumns, criterion: Criterion) -> exp.Expr:
    value = compile_value(sql, columns, criterion.property)
    op, comparand = criterion.operator, criterion.value
    if op == "is null":
        return exp.Not(this=exp.paren(value.present.copy()))
    if op == "is not null":
        return value.present
    if isinstance(comparand, tuple) and op != "in":
        raise DefinitionError(
            f"criteria: {op!r} with a list (whole-array equality) has no batch translation"
        )
    if op == "like":
        like = exp.Like(this=value.text.copy(), expression=exp.Literal.string(str(comparand)))
        if sql.name in ("duckdb", "snowflake"):  # PostgreSQL's and BigQuery's default is '\'
            return all_of(value.present, exp.Escape(this=like, expression=exp.Literal.string("\\")))
        return all_of(value.present, like)
    if op == "in":
        assert isinstance(comparand, tuple)
        return all_of(
            value.present, any_of(*(_pair_test(sql, value, c, _ORDERING["="]) for c in comparand))
        )
    assert comparand is not None and not isinstance(comparand, tuple)
    if op == "!=":
        equal = _pair_test(sql, value, comparand, _ORDERING["="])
        return all_of(
            value.present, exp.Not(this=exp.paren(exp.Coalesce(this=equal, expressions=[FALSE])))
        )
    return all_of(value.present, _pair_test(sql, value, comparand, _ORDERING[op]))


def criteria_predicate(
    sql: SqlDialect, columns: EventColumns, criteria: Criteria | None
) -> exp.Expr:
    """Every ``all`` criterion and one ``any`` criterion hold (each comparison with a null
    value is false). NULLs are folded to false so the result is TRUE or FALSE."""
    if criteria is None:
        return TRUE
    every = [_truthy(_criterion(sql, columns, c)) for c in criteria.all or ()]
    some = [_truthy(_criterion(sql, columns, c)) for c in criteria.any or ()]
    return all_of(*every, any_of(*some) if some else TRUE)


def _truthy(node: exp.Expr) -> exp.Expr:
    if isinstance(node, exp.Boolean):
        return node
    return exp.Coalesce(this=exp.paren(node), expressions=[FALSE])
