"""Properties as SQL: one event's value of an atomic, event, entity or calculated property. Pure.

The stream reads a property as a Python value whose type decides what happens next (``sum``
skips strings, criteria coerce by the value's type, ``first`` keeps any type). A SQL column
has one type, so a property compiles to a :class:`SqlValue`: the same value seen through each
type the stream could find there, each NULL when the value is not of that type
(``number`` is NULL for a string, ``text`` is the stream's ``as_text``), plus the type tests.
Atomic columns have a static type (the enriched-event field's); a JSON value is tested at run
time. The aggregations then take the view the stream's reducer would use.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sqlglot import exp

from signals_stream.batch.dialects import SqlDialect
from signals_stream.definitions.paths import PathStep
from signals_stream.definitions.properties import (
    AtomicProperty,
    CalculatedProperty,
    EntityProperty,
    EventProperty,
)
from signals_stream.events.fields import FIELD_NAMES, FIELD_TYPES, FieldType
from signals_stream.events.self_describing import shred_key

__all__ = [
    "FALSE",
    "TRUE",
    "EventColumns",
    "SqlValue",
    "all_of",
    "any_of",
    "compile_value",
    "null",
]

TRUE: exp.Expr = exp.true()
FALSE: exp.Expr = exp.false()
_FIELD_TYPE = dict(zip(FIELD_NAMES, FIELD_TYPES, strict=True))
_DOUBLE = exp.DataType.build("double")
_BIGINT = exp.DataType.build("bigint")
_TEXT = exp.DataType.build("text")
_TIMESTAMPTZ = exp.DataType.build("timestamptz")


def null() -> exp.Expr:
    return exp.Null()


def _is_false(node: exp.Expr) -> bool:
    return isinstance(node, exp.Boolean) and not node.this


def _is_true(node: exp.Expr) -> bool:
    return isinstance(node, exp.Boolean) and bool(node.this)


def _fold(parts: tuple[exp.Expr, ...], *, neutral: bool) -> exp.Expr:
    """AND (``neutral`` TRUE) or OR (FALSE) of ``parts``, folding literal booleans away."""
    kept = [p for p in parts if not (_is_true(p) if neutral else _is_false(p))]
    if any((_is_false(p) if neutral else _is_true(p)) for p in kept):
        return FALSE if neutral else TRUE
    if not kept:
        return TRUE if neutral else FALSE
    if len(kept) == 1:
        return kept[0].copy()
    combine = exp.and_ if neutral else exp.or_
    return combine(*(p.copy() for p in kept))


def all_of(*parts: exp.Expr) -> exp.Expr:
    """``AND`` of ``parts``, folding literal TRUE/FALSE away."""
    return _fold(parts, neutral=True)


def any_of(*parts: exp.Expr) -> exp.Expr:
    """``OR`` of ``parts``, folding literal TRUE/FALSE away."""
    return _fold(parts, neutral=False)


def _case(pairs: Sequence[tuple[exp.Expr, exp.Expr]]) -> exp.Expr:
    """``CASE WHEN c THEN v ... END``, dropping branches that never hold."""
    kept = [(c, v) for c, v in pairs if not _is_false(c)]
    if not kept:
        return null()
    if _is_true(kept[0][0]):
        return kept[0][1].copy()
    case = exp.Case()
    for cond, value in kept:
        case = case.when(cond.copy(), value.copy())
    return case


@dataclass(frozen=True)
class SqlValue:
    """One property of one event, seen through each type the stream could find.

    Attributes:
        present: the value is not null (the stream's ``value is not None``).
        is_text / is_number / is_bool / is_timestamp: the stream value is a ``str`` /
            ``int`` or ``float`` (not ``bool``) / ``bool`` / ``datetime``; TRUE or FALSE when
            known from the column.
        text: the stream's ``as_text`` of the value (any type).
        number: the value as DOUBLE when it is a number, else NULL.
        boolean: the value when it is a boolean, else NULL.
        timestamp: the value as TIMESTAMPTZ when it is a timestamp or an ISO 8601 string
            (what ``min``/``max`` and ``date_part`` accept), else NULL.
        integral: the value is an ``int`` (for numbers), when known.
    """

    present: exp.Expr
    is_text: exp.Expr
    is_number: exp.Expr
    is_bool: exp.Expr
    is_timestamp: exp.Expr
    text: exp.Expr
    number: exp.Expr
    boolean: exp.Expr
    timestamp: exp.Expr


def _column(name: str) -> exp.Column:
    return exp.column(name, quoted=True)


@dataclass(frozen=True)
class EventColumns:
    """The events table's columns (name -> warehouse type, as ``information_schema`` says).

    ``identifier_limit``: the longest column name the warehouse keeps (PostgreSQL cuts
    names at 63 bytes, so ``unstruct_event_com_snowplowanalytics_snowplow_ecommerce_...``
    loses its version, and a cut name is taken as a version of every schema it starts).
    """

    types: Mapping[str, str]
    identifier_limit: int | None = None

    def versions(self, kind: str, vendor: str, name: str, major: int) -> list[str]:
        """Every ``<kind>_<vendor>_<name>_<major>_<minor>_<patch>`` column, oldest first."""
        prefix = shred_key(kind, vendor, name, major) + "_"
        limit = self.identifier_limit
        found = []
        for column in self.types:
            lowered = column.lower()
            rest = lowered.removeprefix(prefix)
            if rest != lowered and re.fullmatch(r"\d+_\d+", rest):
                minor, patch = (int(x) for x in rest.split("_"))
                found.append((minor, patch, column))
            elif limit is not None and len(column) == limit and prefix.startswith(lowered):
                found.append((1 << 30, 0, column))  # version cut off: after the known ones
        return [column for _, _, column in sorted(found)]


def _atomic_value(sql: SqlDialect, columns: EventColumns, name: str) -> SqlValue:
    field_type = _FIELD_TYPE[name]
    warehouse_type = columns.types.get(name)
    if warehouse_type is None:  # not loaded: the stream would read an empty field
        return _nothing()
    col: exp.Expr = _column(name)
    texty = warehouse_type.lower().startswith(("varchar", "text", "char", "string"))
    if field_type is FieldType.STRING:
        value = exp.Nullif(this=exp.cast(col, _TEXT), expression=exp.Literal.string(""))
        return _static(value, text=value, kind="text")
    if field_type is FieldType.TSTAMP:
        ts = sql.call("safe_timestamp", col) if texty else exp.cast(col, _TIMESTAMPTZ)
        return _static(ts, text=sql.call("iso_text", ts), kind="timestamp", timestamp=ts)
    if field_type is FieldType.BOOL:
        flag: exp.Expr = (
            exp.In(
                this=exp.Lower(this=col), expressions=[exp.Literal.string(s) for s in ("1", "true")]
            )
            if texty
            else exp.cast(col, exp.DataType.build("boolean"))
        )
        flag = _case([(exp.Not(this=exp.Is(this=col.copy(), expression=exp.Null())), flag)])
        text = _case(
            [(flag, exp.Literal.string("true")), (exp.Not(this=flag), exp.Literal.string("false"))]
        )
        return _static(flag, text=text, kind="bool", boolean=flag)
    # INT / FLOAT
    number = sql.call("safe_double", col) if texty else exp.cast(col, _DOUBLE)
    if field_type is FieldType.INT:
        text = exp.cast(exp.cast(number, _BIGINT), _TEXT)
    else:
        text = exp.cast(number, _TEXT)
    return _static(number, text=text, kind="number", number=number)


def _nothing() -> SqlValue:
    return SqlValue(FALSE, FALSE, FALSE, FALSE, FALSE, null(), null(), null(), null())


def _static(
    value: exp.Expr,
    *,
    text: exp.Expr,
    kind: str,
    number: exp.Expr | None = None,
    boolean: exp.Expr | None = None,
    timestamp: exp.Expr | None = None,
) -> SqlValue:
    present = exp.Not(this=exp.Is(this=value.copy(), expression=exp.Null()))
    return SqlValue(
        present=present,
        is_text=present if kind == "text" else FALSE,
        is_number=present if kind == "number" else FALSE,
        is_bool=present if kind == "bool" else FALSE,
        is_timestamp=present if kind == "timestamp" else FALSE,
        text=text,
        number=number if number is not None else null(),
        boolean=boolean if boolean is not None else null(),
        timestamp=timestamp if timestamp is not None else null(),
    )


def json_value(sql: SqlDialect, node: exp.Expr) -> SqlValue:
    """A JSON value (SQL NULL or JSON null: absent) as a :class:`SqlValue`."""
    node = sql.hoist(node)
    is_sql_null = exp.Is(this=node.copy(), expression=exp.Null())
    present = all_of(exp.Not(this=is_sql_null), exp.Not(this=sql.call("json_is_null", node)))
    is_text = all_of(present, sql.call("json_is_string", node))
    is_number = all_of(present, sql.call("json_is_number", node))
    is_bool = all_of(present, sql.call("json_is_bool", node))
    scalar = sql.call("json_scalar_text", node)
    text = _case(
        [(any_of(is_text, is_number, is_bool), scalar), (present, sql.call("json_dump", node))]
    )
    return SqlValue(
        present=present,
        is_text=is_text,
        is_number=is_number,
        is_bool=is_bool,
        is_timestamp=FALSE,  # JSON has no timestamps: ISO strings stay strings
        text=text,
        number=_case([(is_number, exp.cast(scalar.copy(), _DOUBLE))]),
        boolean=_case(
            [(is_bool, exp.EQ(this=scalar.copy(), expression=exp.Literal.string("true")))]
        ),
        timestamp=_case([(is_text, sql.call("safe_timestamp", scalar.copy()))]),
    )


_CAMEL = re.compile(r"([^A-Z_])([A-Z])")  # as the loaders name columns (shred_key)


def _keys(sql: SqlDialect, column_type: str, steps: tuple[PathStep, ...]) -> tuple[PathStep, ...]:
    """The path as the column holds it: BigQuery's loader writes RECORD fields snake_cased
    (``sessionIndex`` -> ``session_index``); JSON columns keep the tracker's keys."""
    if sql.name != "bigquery" or not column_type.lower().startswith(("struct", "record", "array<")):
        return steps
    return tuple(
        _CAMEL.sub(r"\1_\2", step).lower() if isinstance(step, str) else step for step in steps
    )


def _event_value(sql: SqlDialect, columns: EventColumns, prop: EventProperty) -> SqlValue:
    found = columns.versions("unstruct_event", prop.vendor, prop.name, prop.major_version)
    if not found:
        return _nothing()
    # One event has one self-describing event: at most one of these columns is set.
    nodes = [
        sql.json_path(
            sql.json_document(_column(c), columns.types[c]),
            _keys(sql, columns.types[c], prop.steps),
        )
        for c in found
    ]
    node = nodes[0] if len(nodes) == 1 else exp.Coalesce(this=nodes[0], expressions=nodes[1:])
    return json_value(sql, node)


def _entity_value(sql: SqlDialect, columns: EventColumns, prop: EntityProperty) -> SqlValue:
    found = columns.versions("contexts", prop.vendor, prop.name, prop.major_version)
    if not found:
        return _nothing()
    docs = [sql.json_document(_column(c), columns.types[c]) for c in found]
    paths = [_keys(sql, columns.types[c], prop.steps) for c in found]
    index = prop.index
    if len(docs) == 1:
        return json_value(sql, sql.json_path(docs[0], (index, *paths[0])))
    # The stream indexes the event's entities of that major version in one list; here they
    # are split by minor/patch column. The index-th of their concatenation (oldest column
    # first) lies in column k at position p when the columns before k hold index - p.
    lengths = [sql.call("json_array_length", d) for d in docs]
    pairs: list[tuple[exp.Expr, exp.Expr]] = []
    for k, (doc, path) in enumerate(zip(docs, paths, strict=True)):
        before: exp.Expr = exp.Literal.number(0)
        for length in lengths[:k]:
            before = exp.Add(this=before, expression=length.copy())
        for p in range(index + 1):
            cond = all_of(
                exp.EQ(this=before.copy(), expression=exp.Literal.number(index - p)),
                exp.GT(this=lengths[k].copy(), expression=exp.Literal.number(p)),
            )
            pairs.append((cond, sql.json_path(doc, (p, *path))))
    return json_value(sql, _case(pairs))


def _leaf(
    sql: SqlDialect, columns: EventColumns, prop: AtomicProperty | EventProperty | EntityProperty
) -> SqlValue:
    if isinstance(prop, AtomicProperty):
        value = _atomic_value(sql, columns, prop.name)
    elif isinstance(prop, EventProperty):
        value = _event_value(sql, columns, prop)
    else:
        value = _entity_value(sql, columns, prop)
    if prop.date_part is None:
        return value
    return date_part(sql, value, prop.date_part)


_EXTRACTS: dict[str, str] = {
    "hour_of_day": "hour",
    "day_of_week": "iso_dow",
    "month_of_year": "month",
}
_TRUNCATES: dict[str, str] = {
    "active_day": "day_text",
    "active_week": "week_text",
    "active_month": "month_text",
}


def date_part(sql: SqlDialect, value: SqlValue, part: str) -> SqlValue:
    """``date_part`` of a value: an integer (hour, ISO weekday, month) or a date's text."""
    ts = value.timestamp
    if part in _EXTRACTS:
        number = exp.cast(sql.call(_EXTRACTS[part], ts), _DOUBLE)
        return _static(
            number, text=exp.cast(exp.cast(number, _BIGINT), _TEXT), kind="number", number=number
        )
    text = sql.call(_TRUNCATES[part], ts)
    return _static(text, text=text, kind="text")


def _calculated(sql: SqlDialect, columns: EventColumns, prop: CalculatedProperty) -> SqlValue:
    leaves = [_leaf(sql, columns, leaf) for leaf in prop.properties]
    op = prop.operation
    if op == "coalesce":

        def pick(field: Callable[[SqlValue], exp.Expr]) -> exp.Expr:
            return _case([(v.present, field(v)) for v in leaves])

        return SqlValue(
            present=any_of(*(v.present for v in leaves)),
            is_text=pick(lambda v: v.is_text) if len(leaves) > 1 else leaves[0].is_text,
            is_number=pick(lambda v: v.is_number) if len(leaves) > 1 else leaves[0].is_number,
            is_bool=pick(lambda v: v.is_bool) if len(leaves) > 1 else leaves[0].is_bool,
            is_timestamp=pick(lambda v: v.is_timestamp)
            if len(leaves) > 1
            else leaves[0].is_timestamp,
            text=pick(lambda v: v.text),
            number=pick(lambda v: v.number),
            boolean=pick(lambda v: v.boolean),
            timestamp=pick(lambda v: v.timestamp),
        )
    if op == "concat":
        separator = exp.Literal.string(prop.separator or "")
        texts = [
            exp.Coalesce(this=v.text.copy(), expressions=[exp.Literal.string("")]) for v in leaves
        ]
        # Separators go only between present values: each value after the first present one
        # is preceded by the separator.
        joined: exp.Expr | None = None
        seen: exp.Expr = FALSE
        for v, text in zip(leaves, texts, strict=True):
            piece = _case(
                [
                    (all_of(v.present, seen), exp.DPipe(this=separator.copy(), expression=text)),
                    (TRUE, text),
                ]
            )
            joined = piece if joined is None else exp.DPipe(this=joined, expression=piece)
            seen = any_of(seen, v.present)
        assert joined is not None
        value = _case([(seen, joined)])
        return _static(value, text=value, kind="text")
    numbers = [v.number for v in leaves]
    all_numbers = all_of(
        *(exp.Not(this=exp.Is(this=n.copy(), expression=exp.Null())) for n in numbers)
    )
    if op == "sum":
        combined: exp.Expr = numbers[0].copy()
        for n in numbers[1:]:
            combined = exp.Add(this=combined, expression=n.copy())
    elif op == "product":
        combined = numbers[0].copy()
        for n in numbers[1:]:
            combined = exp.Mul(this=combined, expression=n.copy())
    elif op == "min":
        combined = exp.Least(this=numbers[0].copy(), expressions=[n.copy() for n in numbers[1:]])
    else:
        combined = exp.Greatest(this=numbers[0].copy(), expressions=[n.copy() for n in numbers[1:]])
    number = _case([(all_numbers, combined)])
    return _static(number, text=exp.cast(number, _TEXT), kind="number", number=number)


def compile_value(sql: SqlDialect, columns: EventColumns, prop: object) -> SqlValue:
    """The :class:`SqlValue` of a property model."""
    if isinstance(prop, CalculatedProperty):
        return _calculated(sql, columns, prop)
    assert isinstance(prop, AtomicProperty | EventProperty | EntityProperty)
    return _leaf(sql, columns, prop)
