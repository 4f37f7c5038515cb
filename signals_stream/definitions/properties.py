"""Where a value comes from in an enriched event: atomic, event, entity and calculated properties.

Models only; :mod:`signals_stream.definitions.evaluate` compiles them into getters.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, StringConstraints, Tag, field_validator, model_validator

from signals_stream.definitions._base import DefinitionModel
from signals_stream.definitions.paths import compile_path
from signals_stream.events.fields import FIELD_INDEX

__all__ = [
    "DATE_PART_EXTRACTS",
    "LEAF_DISCRIMINATOR",
    "DATE_PART_TRUNCATES",
    "JSON_COLUMNS",
    "TIMESTAMP_FIELDS",
    "AtomicProperty",
    "CalculatedOperation",
    "CalculatedProperty",
    "DatePart",
    "EntityProperty",
    "EventProperty",
    "LeafProperty",
    "Property",
    "iter_leaves",
]

DatePart = Literal[
    "active_day", "active_week", "active_month", "hour_of_day", "day_of_week", "month_of_year"
]
DATE_PART_EXTRACTS = frozenset({"hour_of_day", "day_of_week", "month_of_year"})  # -> integers
DATE_PART_TRUNCATES = frozenset({"active_day", "active_week", "active_month"})  # -> date strings
# The atomic date-time columns: the only atomic fields a `date_part` may apply to.
TIMESTAMP_FIELDS = frozenset(name for name in FIELD_INDEX if name.endswith("_tstamp"))
# Self-describing JSON columns: read through event/entity properties, never as atomic values.
JSON_COLUMNS = frozenset({"contexts", "unstruct_event", "derived_contexts"})

CalculatedOperation = Literal["concat", "sum", "product", "min", "max", "coalesce"]

_SchemaName = Annotated[
    str, StringConstraints(pattern=r"^[a-zA-Z0-9-_]+$", min_length=1, max_length=128)
]
_Vendor = Annotated[str, StringConstraints(min_length=1)]


class AtomicProperty(DefinitionModel):
    """One of the 131 columns of the enriched event (``page_url``, ``derived_tstamp``...).

    Args:
        name: the column name, as in the atomic events table.
        date_part: optional date-part applied to a ``*_tstamp`` column.
    """

    type: Literal["atomic"] = "atomic"
    name: str
    date_part: DatePart | None = None

    @field_validator("name")
    @classmethod
    def _known_column(cls, name: str) -> str:
        if name not in FIELD_INDEX:
            raise ValueError(f"{name!r} is not an enriched-event column (e.g. page_url, app_id)")
        if name in JSON_COLUMNS:
            raise ValueError(
                f"{name!r} holds self-describing JSON; use an event or entity property instead"
            )
        return name

    @model_validator(mode="after")
    def _date_part_on_timestamp(self) -> AtomicProperty:
        if self.date_part is not None and self.name not in TIMESTAMP_FIELDS:
            raise ValueError(
                f"date_part: {self.date_part!r} needs a date-time column (*_tstamp), "
                f"not {self.name!r}"
            )
        return self


class _SchemaProperty(DefinitionModel):
    vendor: _Vendor
    name: _SchemaName
    major_version: int = Field(gt=0)
    path: str
    date_part: DatePart | None = None

    @field_validator("path")
    @classmethod
    def _valid_path(cls, path: str) -> str:
        compile_path(path)  # raises ValueError with the reason
        return path

    @property
    def steps(self) -> tuple[str | int, ...]:
        """The compiled path."""
        return compile_path(self.path)


class EventProperty(_SchemaProperty):
    """A field of the self-describing event ``iglu:vendor/name/jsonschema/major-*-*``.

    Args:
        vendor: schema vendor, e.g. ``com.snowplowanalytics.snowplow.ecommerce``.
        name: schema name, e.g. ``snowplow_ecommerce_action``.
        major_version: schema major version (> 0).
        path: JSONPath subset into the event data, e.g. ``type`` or ``$.items[0].sku``.
        date_part: optional date-part; the field must hold an ISO 8601 date-time.
    """

    type: Literal["event"] = "event"


class EntityProperty(_SchemaProperty):
    """A field of the ``index``-th entity ``iglu:vendor/name/jsonschema/major-*-*`` of the event.

    Entities added by enrichments (``derived_contexts``) count as well as tracked ones.

    Args:
        vendor: schema vendor.
        name: schema name, e.g. ``product``.
        major_version: schema major version (> 0).
        path: JSONPath subset into the entity data.
        index: which of the event's entities of that schema (0 = the first).
        date_part: optional date-part; the field must hold an ISO 8601 date-time.
    """

    type: Literal["entity"] = "entity"
    index: int = Field(default=0, ge=0)


def _property_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        return value.get("type")
    return getattr(value, "type", None)


# Picks the leaf model by ``type`` (also for event-log properties, which add ``output_name``).
LEAF_DISCRIMINATOR = Discriminator(
    _property_tag,
    custom_error_type="property_type",
    custom_error_message="property 'type' must be 'atomic', 'event' or 'entity'",
)
LeafProperty = Annotated[
    Annotated[AtomicProperty, Tag("atomic")]
    | Annotated[EventProperty, Tag("event")]
    | Annotated[EntityProperty, Tag("entity")],
    LEAF_DISCRIMINATOR,
]


class CalculatedProperty(DefinitionModel):
    """One value combined from several leaf properties of the same event.

    Args:
        operation: ``concat`` (strings, nulls skipped), ``sum``/``product``/``min``/``max``
            (numbers; any null gives null) or ``coalesce`` (first non-null).
        properties: 1 to 50 leaf properties, in order; at least 2 except for ``coalesce``.
        separator: placed between ``concat`` values (default ``""``); ``concat`` only.
    """

    type: Literal["calculated"] = "calculated"
    operation: CalculatedOperation
    properties: tuple[LeafProperty, ...] = Field(min_length=1, max_length=50)
    separator: Annotated[str, StringConstraints(pattern=r"^[^\x00]*$", max_length=16)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_nesting(cls, data: Any) -> Any:
        # Caught before the union so the message says why, not "type must be atomic...".
        if isinstance(data, dict) and isinstance(data.get("properties"), list | tuple):
            for item in data["properties"]:
                if _property_tag(item) == "calculated":
                    raise ValueError("properties: calculated properties cannot be nested")
        return data

    @model_validator(mode="after")
    def _arity_and_separator(self) -> CalculatedProperty:
        if self.operation != "coalesce" and len(self.properties) < 2:
            raise ValueError(
                f"properties: {self.operation!r} needs at least 2 properties, "
                f"got {len(self.properties)}"
            )
        if self.separator is not None and self.operation != "concat":
            raise ValueError(f"separator: only valid for 'concat', not {self.operation!r}")
        return self


Property = Annotated[
    Annotated[AtomicProperty, Tag("atomic")]
    | Annotated[EventProperty, Tag("event")]
    | Annotated[EntityProperty, Tag("entity")]
    | Annotated[CalculatedProperty, Tag("calculated")],
    Discriminator(
        _property_tag,
        custom_error_type="property_type",
        custom_error_message="property 'type' must be 'atomic', 'event', 'entity' or 'calculated'",
    ),
]


def iter_leaves(prop: Any) -> tuple[AtomicProperty | EventProperty | EntityProperty, ...]:
    """The leaf properties of a property (itself, or the inputs of a calculated one)."""
    if isinstance(prop, CalculatedProperty):
        return prop.properties
    return (prop,)
