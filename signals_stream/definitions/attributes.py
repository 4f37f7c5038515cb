"""The attribute definition: which events, which value, which aggregation, over which period.

Besides the wire schema, construction enforces the rules the Signals server applies and the SDK
does not (each error names the field): ``period`` excludes ``ttl``; ``time_since_*`` needs a
``time_unit``, reads ``derived_tstamp`` only and returns ``float``/``double``; ``time_unit`` is
only for ``time_since_*``; ``date_part`` only with the aggregations that count or pick values,
and with the type its result has; every aggregation but ``counter`` needs a property; ``type``
must be able to hold the aggregation's result; ``default_value`` must fit ``type``.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import model_validator

from signals_stream.definitions._base import DefinitionModel, Name, Text
from signals_stream.definitions.criteria import Criteria
from signals_stream.definitions.durations import Duration
from signals_stream.definitions.properties import (
    DATE_PART_EXTRACTS,
    AtomicProperty,
    CalculatedProperty,
    Property,
    iter_leaves,
)
from signals_stream.definitions.selectors import EventSelector

__all__ = [
    "AGGREGATIONS",
    "ATTRIBUTE_TYPES",
    "DATE_PART_AGGREGATIONS",
    "Aggregation",
    "Attribute",
    "AttributeType",
    "TimeUnit",
]

AttributeType = Literal[
    "bytes", "string", "int32", "int64", "double", "float", "bool", "unix_timestamp",
    "timestamp", "bytes_list", "string_list", "int32_list", "int64_list", "double_list",
    "float_list", "bool_list", "unix_timestamp_list", "dict",
]  # fmt: skip
Aggregation = Literal[
    "counter", "sum", "min", "max", "mean", "first", "last", "unique_list", "most_frequent",
    "least_frequent", "category_count", "approx_count_distinct", "time_since_last",
    "time_since_first",
]  # fmt: skip
TimeUnit = Literal["s", "min", "h", "d"]
ATTRIBUTE_TYPES: tuple[str, ...] = get_args(AttributeType)
AGGREGATIONS: tuple[str, ...] = get_args(Aggregation)

_INTEGER = frozenset({"int32", "int64"})
_FRACTIONAL = frozenset({"float", "double"})
_NUMERIC = _INTEGER | _FRACTIONAL
_SCALAR = _NUMERIC | {"bytes", "string", "bool", "unix_timestamp", "timestamp"}
_LIST = frozenset(t for t in ATTRIBUTE_TYPES if t.endswith("_list"))
# Which result types each aggregation can produce.
_RESULT_TYPES: dict[str, frozenset[str]] = {
    "counter": _NUMERIC,
    "sum": _NUMERIC,
    "min": _NUMERIC | {"unix_timestamp", "timestamp"},
    "max": _NUMERIC | {"unix_timestamp", "timestamp"},
    "mean": _FRACTIONAL,
    "first": _SCALAR,
    "last": _SCALAR,
    "most_frequent": _SCALAR,
    "least_frequent": _SCALAR,
    "unique_list": _LIST,
    "category_count": frozenset({"dict"}),
    "approx_count_distinct": _NUMERIC,
    "time_since_last": _FRACTIONAL,
    "time_since_first": _FRACTIONAL,
}
DATE_PART_AGGREGATIONS = frozenset(
    {"most_frequent", "least_frequent", "first", "last", "unique_list", "category_count",
     "approx_count_distinct"}
)  # fmt: skip
_TIME_SINCE = frozenset({"time_since_last", "time_since_first"})

DefaultValue = str | int | float | bool | tuple[str | int | float | bool, ...] | None


class Attribute(DefinitionModel):
    """One attribute of an attribute group.

    Unknown fields are rejected (``extra="forbid"``): anything here may change what is
    computed, and silently ignoring a field we do not implement would compute something else.

    Args:
        name: column name of the attribute.
        type: result type (Feast value type).
        events: event selectors; empty means every event.
        aggregation: one of :data:`AGGREGATIONS`.
        property: the aggregated value; ignored by ``counter``, ``derived_tstamp`` (the only
            one allowed) for ``time_since_*``.
        criteria: event filter.
        period: rolling window; absent means lifetime.
        default_value: returned when there is no value.
        time_unit: unit of ``time_since_*`` results.
        ttl: lifetime of the value without updates (lifetime attributes only).
        description: free text.
    """

    name: Name
    description: Text | None = None
    type: AttributeType
    events: tuple[EventSelector, ...] = ()
    aggregation: Aggregation
    property: Property | None = None
    criteria: Criteria | None = None
    period: Duration | None = None
    default_value: DefaultValue = None
    time_unit: TimeUnit | None = None
    ttl: Duration | None = None

    @model_validator(mode="after")
    def _semantics(self) -> Attribute:
        if self.period is not None and self.ttl is not None:
            raise ValueError("ttl: cannot be combined with period (ttl is for lifetime attributes)")
        if self.aggregation in _TIME_SINCE:
            self._check_time_since()
        else:
            if self.time_unit is not None:
                raise ValueError(
                    f"time_unit: only valid for time_since_*, not {self.aggregation!r}"
                )
            if self.property is None and self.aggregation != "counter":
                raise ValueError(f"property: required for aggregation {self.aggregation!r}")
        self._check_date_part()
        if self.type not in _RESULT_TYPES[self.aggregation]:
            allowed = ", ".join(sorted(_RESULT_TYPES[self.aggregation]))
            raise ValueError(
                f"type: {self.type!r} cannot hold the result of {self.aggregation!r} "
                f"(allowed: {allowed})"
            )
        self._check_default()
        return self

    def _check_time_since(self) -> None:
        if self.time_unit is None:
            raise ValueError(f"time_unit: required for {self.aggregation!r} (s, min, h or d)")
        prop = self.property
        if prop is not None and not (
            isinstance(prop, AtomicProperty)
            and prop.name == "derived_tstamp"
            and prop.date_part is None
        ):
            raise ValueError(
                f"property: {self.aggregation!r} always uses derived_tstamp; omit the property"
            )

    def _check_date_part(self) -> None:
        if self.property is None:
            return
        parts = {leaf.date_part for leaf in iter_leaves(self.property)} - {None}
        if not parts:
            return
        if self.aggregation not in DATE_PART_AGGREGATIONS:
            allowed = ", ".join(sorted(DATE_PART_AGGREGATIONS))
            raise ValueError(
                f"property.date_part: not allowed with aggregation {self.aggregation!r} "
                f"(allowed: {allowed})"
            )
        if isinstance(self.property, CalculatedProperty) or self.aggregation not in (
            "first", "last", "most_frequent", "least_frequent", "unique_list"
        ):  # fmt: skip
            return  # the result type is the calculation's, or a count
        part = next(iter(parts))
        element = "int" if part in DATE_PART_EXTRACTS else "string"
        expected = {"int32", "int64"} if element == "int" else {"string"}
        if self.aggregation == "unique_list":
            expected = {f"{t}_list" for t in expected}
        if self.type not in expected:
            raise ValueError(
                f"type: date_part {part!r} with {self.aggregation!r} gives "
                f"{' or '.join(sorted(expected))}, not {self.type!r}"
            )

    def _check_default(self) -> None:
        value = self.default_value
        if value is None:
            return
        kind = self.type
        if kind in _LIST:
            ok = isinstance(value, tuple)
        elif kind == "dict":
            ok = False
        elif isinstance(value, tuple):
            ok = False
        elif kind in _NUMERIC:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        elif kind == "bool":
            ok = isinstance(value, bool)
        elif kind in ("string", "bytes"):
            ok = isinstance(value, str)
        else:  # timestamps: ISO string or epoch number
            ok = not isinstance(value, bool)
        if not ok:
            raise ValueError(f"default_value: {value!r} does not fit type {kind!r}")
