"""Request and response models of the dataset endpoints, as SDK 0.4.10 sends and reads them.

``DatasetBundleRequest`` is the body of ``POST datasets/sql`` and ``POST datasets/runs``; its
``anchors`` is one of :class:`SessionAnchors`, :class:`UserSuppliedAnchors` (the SDK's two
modes) or :class:`EventAnchors` (the current Snowplow docs' third mode, which SDK 0.4.10 has
no method for: API and CLI only), told apart by ``mode``. Bad bodies raise
:class:`~signals_stream.errors.DefinitionError` (422) naming the field (``anchors.min_events:
...``). Beyond the SDK: ``seed`` (the sampling of negatives and per-session caps, see
``docs/semantics.md``), ``dialect`` (which SQL ``datasets/sql`` answers in) and
``agentic_contexts`` (event logs whose context at each anchor becomes a column; the current
docs' "agentic contexts in datasets": built by replaying the log only).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from signals_stream.definitions import AttributeGroup
from signals_stream.definitions._base import DefinitionModel
from signals_stream.definitions.criteria import Criteria
from signals_stream.definitions.event_logs import EventLog

__all__ = [
    "DEFAULT_ANCHORS_TABLE",
    "DEFAULT_DATASET_TABLE",
    "DEFAULT_PREVIEW_ROWS",
    "DEFAULT_TABLE_PREFIX",
    "MAX_PREVIEW_ROWS",
    "AnchorsSpec",
    "AttributeSqlFile",
    "DatasetAttributeGroups",
    "DatasetBundleRequest",
    "DatasetBundleResponse",
    "DatasetEvent",
    "DatasetPreviewResponse",
    "DatasetRunCancelResponse",
    "DatasetRunResponse",
    "DatasetRunStatus",
    "DatasetRunStatusResponse",
    "DatasetSqlFile",
    "EventAnchors",
    "SessionAnchors",
    "TrainingSpan",
    "UserSuppliedAnchors",
    "WarehouseTable",
]

DEFAULT_TABLE_PREFIX = "signals_attributes"
DEFAULT_ANCHORS_TABLE = "signals_anchors"
DEFAULT_DATASET_TABLE = "signals_dataset"
DEFAULT_PREVIEW_ROWS = 100
MAX_PREVIEW_ROWS = 10_000

_Database = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]+$", min_length=1)]
_Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_]+$", min_length=1)]
_EventName = Annotated[
    str, StringConstraints(pattern=r"^[a-zA-Z0-9_-]+$", min_length=1, max_length=128)
]
DatasetRunStatus = Literal["pending", "success", "failed"]


class WarehouseTable(DefinitionModel):
    """``database.schema.table``; ``database`` and ``schema`` default to the warehouse's output
    ones. For DuckDB, ``database`` is a catalog: the file's stem, as for the sync engine."""

    database: _Database | None = None
    schema_: _Identifier | None = Field(None, alias="schema")
    table: _Identifier


class TrainingSpan(DefinitionModel):
    """The anchors' time range: ``start_time <= anchor_ts < end_time``."""

    start_time: datetime
    end_time: datetime

    @model_validator(mode="after")
    def _ordered(self) -> TrainingSpan:
        if _utc(self.end_time) <= _utc(self.start_time):
            raise ValueError("end_time: must be after start_time")
        return self


class DatasetEvent(DefinitionModel):
    """An event by name (``event_name`` of ``atomic.events``)."""

    name: _EventName


def _default_excluded() -> tuple[DatasetEvent, ...]:
    return (DatasetEvent(name="page_ping"),)


class SessionAnchors(DefinitionModel):
    """Labeled points in sessions: each event of a session in the span (but excluded ones)
    before the session's first goal event; positive in sessions that reach the goal."""

    model_config = ConfigDict(extra="ignore")

    mode: Literal["session"] = "session"
    goal_criteria: Criteria
    training_span: TrainingSpan
    output: WarehouseTable | None = None
    excluded_events: tuple[DatasetEvent, ...] | None = Field(default_factory=_default_excluded)
    min_events: int | None = Field(1, ge=0)
    max_anchors_per_session: int | None = Field(None, ge=1)
    max_negative_ratio: float | None = Field(5.0, gt=0)


class EventAnchors(DefinitionModel):
    """Every event in the span matching ``criteria`` (unlabeled; the earliest
    ``max_anchors_per_session`` per session when set). Not in SDK 0.4.10."""

    model_config = ConfigDict(extra="ignore")

    mode: Literal["event"] = "event"
    criteria: Criteria
    training_span: TrainingSpan
    output: WarehouseTable | None = None
    max_anchors_per_session: int | None = Field(None, ge=1)


class UserSuppliedAnchors(DefinitionModel):
    """A warehouse table of anchors: each requested key's column, ``anchor_ts`` and, unless
    ``has_label`` is false, ``label``."""

    model_config = ConfigDict(extra="ignore")

    mode: Literal["user_supplied"] = "user_supplied"
    source: WarehouseTable
    has_label: bool | None = True


AnchorsSpec = Annotated[
    SessionAnchors | UserSuppliedAnchors | EventAnchors, Field(discriminator="mode")
]


class DatasetAttributeGroups(DefinitionModel):
    """The groups whose attributes become columns, and where their tables go
    (``{table_prefix}_{key_name}``, one per attribute key)."""

    model_config = ConfigDict(extra="ignore")

    database: _Database | None = None
    schema_: _Identifier | None = Field(None, alias="schema")
    table_prefix: _Identifier | None = DEFAULT_TABLE_PREFIX
    attribute_groups: tuple[AttributeGroup, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _computable(self) -> DatasetAttributeGroups:
        for i, group in enumerate(self.attribute_groups):
            if not group.attributes:
                raise ValueError(
                    f"attribute_groups.{i}: group {group.name!r} has no attributes "
                    "(a warehouse table group has nothing to compute at a moment)"
                )
            if group.attribute_key.source is None:
                raise ValueError(
                    f"attribute_groups.{i}.attribute_key: {group.attribute_key.name!r} reads "
                    "no id from events"
                )
        return self

    @property
    def prefix(self) -> str:
        return self.table_prefix or DEFAULT_TABLE_PREFIX


class DatasetBundleRequest(DefinitionModel):
    """``POST datasets/sql`` and ``POST datasets/runs``.

    Args:
        anchors: which moments become rows.
        attributes: the groups, and where their per-key tables go.
        dataset: the assembled table; default ``signals_dataset``.
        max_lookback_days: how far before an anchor events are read; none: the longest
            rolling period when every attribute has one, else all history.
        seed: the sampling seed (ours; the SDK does not send it: 0).
        dialect: the SQL ``datasets/sql`` answers in (ours; default the warehouse's).
        agentic_contexts: event logs (the SDK's ``EventLog`` bodies); each adds a column named
            as the log holding the entity's context at the anchor, as ``GET event_log`` would
            have answered it then (ours; from the log only: ``--from log``).
        agentic_context_format: ``json`` (the ``EventLogBufferResponse`` text, default) or
            ``narrative``.
    """

    model_config = ConfigDict(extra="ignore")

    anchors: AnchorsSpec
    attributes: DatasetAttributeGroups
    dataset: WarehouseTable | None = None
    max_lookback_days: int | None = Field(None, ge=1)
    seed: int = Field(0, ge=0, le=2**31 - 1)
    dialect: Literal["duckdb", "postgres", "snowflake", "bigquery"] | None = None
    agentic_contexts: tuple[EventLog, ...] = ()
    agentic_context_format: Literal["json", "narrative"] = "json"

    @model_validator(mode="after")
    def _contexts_once(self) -> DatasetBundleRequest:
        names = [log.name for log in self.agentic_contexts]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise ValueError(f"agentic_contexts.{i}: {name!r} is given twice")
        return self


class DatasetSqlFile(BaseModel):
    """One stage of a bundle: the table it creates and its SQL."""

    model_config = ConfigDict(populate_by_name=True)

    database: str | None
    schema_: str | None = Field(alias="schema")
    table: str
    sql: str | None


class AttributeSqlFile(DatasetSqlFile):
    """The attributes of one key at every anchor (the SDK wants the key's definition)."""

    attribute_key: dict[str, Any]


class DatasetBundleResponse(BaseModel):
    anchors: DatasetSqlFile
    attributes: list[AttributeSqlFile]
    dataset: DatasetSqlFile

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class DatasetRunResponse(BaseModel):
    id: uuid.UUID
    dataset: dict[str, Any]
    created_at: datetime


class DatasetRunStatusResponse(BaseModel):
    id: uuid.UUID
    status: DatasetRunStatus
    dataset: dict[str, Any]
    error: str | None = None


class DatasetPreviewResponse(BaseModel):
    columns: list[str]
    data: list[list[Any]]
    row_count: int


class DatasetRunCancelResponse(BaseModel):
    id: uuid.UUID
    message: str


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
