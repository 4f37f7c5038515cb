"""Agentic contexts (``EventLog`` in the SDK): which events an entity's rolling buffer keeps,
and which of their properties, under which output names.

The models accept exactly the JSON SDK 0.4.10 sends (limits of its ``model.py``: 1..20
selections, 1..50 properties each, ``max_events`` 1..100, ``max_age_seconds`` 1..3600, a
prompt of at most 3,800 characters). :func:`compile_event_log` turns one into closures for the
hot path; the buffer itself is :mod:`signals_stream.engine.event_buffer`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from pydantic import ConfigDict, Field, StringConstraints, Tag, model_validator

from signals_stream.definitions._base import DefinitionModel, Name, Owner, Text, null_is_default
from signals_stream.definitions.compiled import CompiledKey, compile_key
from signals_stream.definitions.evaluate import (
    EventView,
    Getter,
    NeededFields,
    compile_property,
    property_needs,
)
from signals_stream.definitions.keys import AttributeKey
from signals_stream.definitions.properties import (
    LEAF_DISCRIMINATOR,
    AtomicProperty,
    EntityProperty,
    EventProperty,
)
from signals_stream.definitions.selectors import EVENT_SPECIFICATION_SCHEMA, EventSelector
from signals_stream.events.parse import shred_key

__all__ = [
    "CompiledEventLog",
    "EventLog",
    "EventLogEvent",
    "EventSelection",
    "compile_event_log",
]

_OutputName = Annotated[str, StringConstraints(min_length=1, max_length=128)]
_SchemaName = Annotated[
    str, StringConstraints(pattern=r"^[a-zA-Z0-9-_]+$", min_length=1, max_length=128)
]
_SPEC_KEY = shred_key("contexts", *EVENT_SPECIFICATION_SCHEMA)
_IDENTITY = frozenset({"event_vendor", "event_name", "event_version"})


class LogAtomicProperty(AtomicProperty):
    """An atomic column, kept as ``output_name`` (default: the column name)."""

    output_name: _OutputName | None = None

    @property
    def key(self) -> str:
        return self.output_name or self.name


class LogEventProperty(EventProperty):
    """A field of the self-describing event, kept as ``output_name`` (default: the path's last
    key)."""

    output_name: _OutputName | None = None

    @property
    def key(self) -> str:
        return self.output_name or _last_key(self.steps)


class LogEntityProperty(EntityProperty):
    """A field of the ``index``-th entity of a schema, kept as ``output_name`` (default: the
    path's last key)."""

    output_name: _OutputName | None = None

    @property
    def key(self) -> str:
        return self.output_name or _last_key(self.steps)


def _last_key(steps: tuple[str | int, ...]) -> str:
    keys = [s for s in steps if isinstance(s, str)]
    return keys[-1] if keys else str(steps[-1])


LogProperty = Annotated[
    Annotated[LogAtomicProperty, Tag("atomic")]
    | Annotated[LogEventProperty, Tag("event")]
    | Annotated[LogEntityProperty, Tag("entity")],
    LEAF_DISCRIMINATOR,
]


class EventLogEvent(EventSelector):
    """Which events a selection takes: an :class:`EventSelector` (name / vendor / version, each
    omitted field a wildcard, or an event specification id) that may pin ``major_version``
    (any ``M-x-x``) instead of ``version``."""

    major_version: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _major_is_exclusive(self) -> EventLogEvent:
        if self.major_version is not None and self.version is not None:
            raise ValueError("major_version: cannot be combined with version")
        if self.major_version is not None and self.event_specification_id is not None:
            raise ValueError("event_specification_id: cannot be combined with major_version")
        return self


class EventSelection(DefinitionModel):
    """One event selector and the 1..50 properties an entry keeps of each event it takes."""

    event: EventLogEvent
    properties: tuple[LogProperty, ...] = Field(min_length=1, max_length=50)

    @model_validator(mode="after")
    def _unique_outputs(self) -> EventSelection:
        seen: set[str] = set()
        for prop in self.properties:
            if prop.key in seen:
                raise ValueError(
                    f"properties: two properties are kept as {prop.key!r}; "
                    "give one of them another output_name"
                )
            seen.add(prop.key)
        return self


class _KeyLink(DefinitionModel):
    model_config = ConfigDict(extra="ignore")

    name: Name


class EventLog(DefinitionModel):
    """An agentic context: a rolling buffer of selected events per entity of ``attribute_key``.

    Not versioned (``version`` is echoed); ``is_published`` is switched by ``engines/publish``
    only. Any attribute key may be used, not just ``domain_sessionid`` (cross-session
    contexts, e.g. per ``domain_userid``).
    """

    model_config = ConfigDict(extra="allow")

    name: Name
    version: int = Field(default=1, ge=1)
    description: Annotated[Text, StringConstraints(max_length=1024)] | None = None
    owner: Owner | None = None
    prompt: Annotated[Text, StringConstraints(max_length=3800)] | None = None
    attribute_key: _KeyLink
    events: tuple[EventSelection, ...] = Field(min_length=1, max_length=20)
    max_events: int = Field(gt=0, le=100)
    max_age_seconds: int = Field(gt=0, le=3600)
    is_published: bool = False

    @model_validator(mode="before")
    @classmethod
    def _null_is_default(cls, data: Any) -> Any:
        return null_is_default(data, "is_published")


Predicate = Callable[[EventView], bool]


@dataclass(frozen=True, slots=True)
class CompiledSelection:
    """One selection on the hot path: its predicate and ``(output name, getter)`` pairs."""

    matches: Predicate
    outputs: tuple[tuple[str, Getter], ...]


@dataclass(frozen=True, slots=True)
class CompiledEventLog:
    """A published event log, compiled.

    ``state_id`` hashes what decides a buffer's entries (key and selections); a buffer written
    under another id belongs to an earlier definition and starts again empty.
    """

    name: str
    key: CompiledKey
    definition: EventLog
    selections: tuple[CompiledSelection, ...]
    max_events: int
    max_age_ms: int
    state_id: str
    needs: NeededFields

    def entry(self, event: EventView) -> dict[str, Any] | None:
        """The properties an entry keeps of ``event`` (the first selection taking it), or
        ``None`` when no selection takes it."""
        for selection in self.selections:
            if selection.matches(event):
                return {name: get(event) for name, get in selection.outputs}
        return None


def _selector(event: EventLogEvent) -> Predicate:
    if event.event_specification_id is not None:
        spec = event.event_specification_id
        return lambda e: any(x.get("id") == spec for x in e.entities(_SPEC_KEY))
    vendor, name, version = event.vendor, event.name, event.version
    major = None if event.major_version is None else f"{event.major_version}-"

    def matches(e: EventView) -> bool:
        return (
            (vendor is None or e.event_vendor == vendor)
            and (name is None or e.event_name == name)
            and (version is None or e.event_version == version)
            and (major is None or (e.event_version or "").startswith(major))
        )

    return matches


def compile_event_log(log: EventLog, key: AttributeKey) -> CompiledEventLog:
    """Compile ``log`` for entities of ``key`` (the registered key its link names)."""
    compiled_key = compile_key(key)
    selections = tuple(
        CompiledSelection(
            matches=_selector(s.event),
            outputs=tuple((p.key, compile_property(p)) for p in s.properties),
        )
        for s in log.events
    )
    needs = NeededFields.union(
        [
            compiled_key.needs,
            NeededFields(atomic=_IDENTITY),
            *(property_needs(p) for s in log.events for p in s.properties),
        ]
        + [
            NeededFields(entities=frozenset({_SPEC_KEY}))
            for s in log.events
            if s.event.event_specification_id is not None
        ]
    )
    canonical = orjson.dumps(
        [key.name, [s.to_wire() for s in log.events]], option=orjson.OPT_SORT_KEYS
    )
    return CompiledEventLog(
        name=log.name,
        key=compiled_key,
        definition=log,
        selections=selections,
        max_events=log.max_events,
        max_age_ms=log.max_age_seconds * 1000,
        state_id=hashlib.sha256(canonical).hexdigest()[:16],
        needs=needs,
    )
