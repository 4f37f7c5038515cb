"""Attribute groups: versioned sets of attributes computed for one attribute key.

Three kinds share the wire model, told apart by ``offline`` and what is present:

- **stream** (``offline`` false/absent, ``attributes``): computed from events by this engine;
- **batch** (``offline`` true, ``attributes``): computed in the warehouse; stored, not computed;
- **external_batch** (``offline`` true, ``fields`` and ``batch_source``): synced from a table.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from signals_stream.definitions._base import DefinitionModel, Name, Owner, Text
from signals_stream.definitions.attributes import Attribute, AttributeType
from signals_stream.definitions.durations import Duration
from signals_stream.definitions.keys import AttributeKey

__all__ = [
    "DEFAULT_REFRESH_RATE",
    "DEFAULT_WAREHOUSE_TTL",
    "AttributeGroup",
    "BatchSource",
    "GroupKind",
    "WarehouseField",
]

# Signals' defaults for warehouse groups: synced hourly, values live 365 days without update.
DEFAULT_REFRESH_RATE = timedelta(hours=1)
DEFAULT_WAREHOUSE_TTL = timedelta(days=365)
_MIN_REFRESH_RATE = timedelta(minutes=1)

GroupKind = Literal["stream", "batch", "external_batch"]

# Computed by the server and sent in responses (`AttributeGroupResponse`); dropped on input so
# a body fetched with GET can be published again.
_SERVER_FIELDS = (
    "attribute_key_or_name",
    "attribute_group_or_attribute_key_ttl",
    "full_name",
    "feast_name",
    "stream_source_name",
)
_NULL_MEANS_DEFAULT = ("version", "is_published", "online")
_Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_]+$", min_length=1)]


class BatchSource(DefinitionModel):
    """The warehouse table of an external batch group (the sync engine reads it).

    Args:
        name: source name.
        timestamp_field: column telling when a row was last updated.
        database: database (Snowflake) or project (BigQuery).
        schema: schema or dataset (field ``schema_`` in Python, ``schema`` on the wire).
        table: table name.
        description: free text.
        owner: owner.
    """

    model_config = ConfigDict(extra="allow")

    name: Name
    timestamp_field: _Identifier
    description: Text | None = None
    owner: Owner | None = None
    database: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]+$", min_length=1)]
    schema_: _Identifier = Field(alias="schema")
    table: _Identifier


class WarehouseField(DefinitionModel):
    """One column synced from the table of an external batch group.

    Args:
        name: column name.
        type: value type.
        description: free text.
    """

    model_config = ConfigDict(extra="allow")

    name: Name
    description: Text | None = None
    type: AttributeType


_CLOCK_SKEW = timedelta(seconds=5)  # between the caller's clock and ours


class AttributeGroup(DefinitionModel):
    """A versioned attribute group, exactly as the SDK publishes it.

    Unknown top-level fields are kept and echoed (``extra="allow"``) for forward compatibility;
    the attributes themselves reject unknown fields. Server-computed response fields
    (``full_name``...) are dropped on input and recomputed.

    Args:
        name: group name.
        version: group version (>= 1).
        attribute_key: the embedded key object (the whole key, or just ``{"name": ...}``).
        attributes: computed attributes (stream and batch groups).
        fields: synced columns (external batch groups).
        batch_source: source table (external batch groups).
        ttl: lifetime of values without updates; falls back to the key's ttl.
        online: deprecated; stored only.
        offline: true for warehouse groups.
        description: free text.
        owner: owner, usually an email.
        is_published: the publish switch.
        backfill_since_tstamp: an ISO 8601 time, not in the future: where a stream group's
            backfill from the input log starts (``engine.backfill``), or a warehouse group's
            first sync.
        backfill_until_tstamp: with ``backfill_since_tstamp``, a later ISO 8601 time: a stream
            group's backfill reads the input log up to it only (a range backfill,
            ``signals-stream backfill start --until``; ``docs/semantics.md``).
        refresh_rate: warehouse sync interval (at least a minute; hourly when unset).
    """

    model_config = ConfigDict(extra="allow")

    name: Name
    version: int = Field(default=1, ge=1)
    attribute_key: AttributeKey
    ttl: Duration | None = None
    batch_source: BatchSource | None = None
    online: bool | None = True
    offline: bool | None = None
    description: Text | None = None
    owner: Owner | None = None
    fields: tuple[WarehouseField, ...] | None = None
    attributes: tuple[Attribute, ...] | None = None
    is_published: bool = False
    backfill_since_tstamp: datetime | None = None
    backfill_until_tstamp: datetime | None = None
    refresh_rate: Duration | None = None

    @model_validator(mode="before")
    @classmethod
    def _drop_server_fields(cls, data: Any) -> Any:
        if isinstance(data, dict):
            # The OpenAPI schema makes these nullable with a default; null means the default.
            return {
                k: v
                for k, v in data.items()
                if k not in _SERVER_FIELDS and not (v is None and k in _NULL_MEANS_DEFAULT)
            }
        return data

    @field_validator("backfill_since_tstamp", "backfill_until_tstamp", mode="before")
    @classmethod
    def _iso_time(cls, value: Any, info: ValidationInfo) -> Any:
        # pydantic would also take a number (epoch seconds): the SDK sends ISO strings.
        if value is not None and not isinstance(value, str | datetime):
            raise ValueError(f"{info.field_name}: must be an ISO 8601 timestamp")
        return value

    @field_validator("backfill_until_tstamp", mode="after")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # as the SDK's naive datetimes mean
        return value

    @field_validator("backfill_since_tstamp", mode="after")
    @classmethod
    def _not_future(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)  # as the SDK's naive datetimes mean
        if value > datetime.now(UTC) + _CLOCK_SKEW:
            raise ValueError(
                f"backfill_since_tstamp: {value.isoformat()} is in the future; a backfill "
                "reads events already in the input log"
            )
        return value

    @model_validator(mode="after")
    def _shape(self) -> AttributeGroup:
        until, since = self.backfill_until_tstamp, self.backfill_since_tstamp
        if until is not None:
            if since is None:
                raise ValueError("backfill_until_tstamp: needs a backfill_since_tstamp")
            if until <= since:
                raise ValueError(
                    f"backfill_until_tstamp: {until.isoformat()} is not after "
                    f"backfill_since_tstamp {since.isoformat()}"
                )
            if self.offline:
                raise ValueError("backfill_until_tstamp: only stream groups are backfilled")
        if self.refresh_rate is not None and self.refresh_rate < _MIN_REFRESH_RATE:
            raise ValueError("refresh_rate: must be at least one minute (PT1M)")
        if self.offline:
            if not self.attributes:
                if not self.fields:
                    raise ValueError("fields: a warehouse group needs at least one field")
                if self.batch_source is None:
                    raise ValueError("batch_source: required for a warehouse group")
        else:
            if not self.attributes:
                raise ValueError("attributes: a stream group needs at least one attribute")
            for field in ("fields", "batch_source"):
                if getattr(self, field) is not None:
                    raise ValueError(f"{field}: only valid for warehouse groups (offline=true)")
            key = self.attribute_key
            if key.source is None and key.external_column is not None:
                raise ValueError(
                    f"attribute_key: {key.name!r} is a warehouse column; a stream group needs "
                    "a key read from events (property)"
                )
        names = [a.name for a in self.attributes or ()] + [f.name for f in self.fields or ()]
        dupes = sorted(name for name, n in Counter(names).items() if n > 1)
        if dupes:
            raise ValueError(f"attributes: duplicate names {', '.join(dupes)}")
        return self

    @property
    def kind(self) -> GroupKind:
        """``stream``, ``batch`` or ``external_batch`` (see the module docstring)."""
        if not self.offline:
            return "stream"
        return "batch" if self.attributes else "external_batch"

    @property
    def full_name(self) -> str:
        """``<name>_v<version>``, the prefix of qualified attribute names."""
        return f"{self.name}_v{self.version}"

    @property
    def attribute_key_or_name(self) -> str:
        """The key's deprecated ``key`` if set, else its name (a response field)."""
        return self.attribute_key.key or self.attribute_key.name

    @property
    def id_column(self) -> str:
        """The warehouse column holding the key's ids (external batch groups)."""
        return self.attribute_key.external_column or self.attribute_key.name

    @property
    def sync_every(self) -> timedelta:
        """How often a warehouse group is synced."""
        return self.refresh_rate or DEFAULT_REFRESH_RATE

    @property
    def warehouse_ttl(self) -> timedelta:
        """Lifetime of a synced value: the group's ttl, else the key's, else 365 days."""
        return self.ttl or self.attribute_key.ttl or DEFAULT_WAREHOUSE_TTL

    def attribute(self, name: str) -> Attribute:
        """The attribute called ``name``.

        Raises:
            KeyError: no such attribute in this group.
        """
        for attribute in self.attributes or ():
            if attribute.name == name:
                return attribute
        raise KeyError(name)

    def attribute_ttl(self, attribute: Attribute) -> timedelta | None:
        """Lifetime of a value: the attribute's ttl, else the group's, else the key's, else
        ``None`` (unlimited)."""
        return attribute.ttl or self.ttl or self.attribute_key.ttl
