"""The parsed enriched event (:class:`Event`) and its compact projection (:class:`Projection`).

An :class:`Event` keeps the 131 TSV texts of its atomic fields (``""`` = null; the three JSON
fields blanked once parsed) and converts a value on first read. Entities are grouped by shred
key. Events are built by :mod:`signals_stream.events.parse`; treat the dicts and lists they return
as read-only (they are the event's own, not copies).

**Projection wire format** (orjson, compact; :meth:`Event.project`)::

    {"v": 1,                                   # format version
     "t": [collector_tstamp_ms, event_time_ms],
     "i": [event_vendor, event_name, event_version],   # resolved identity
     "a": {"<atomic field>": "<TSV text>", ...}, # non-empty fields kept; always event_id,
                                                 # collector_tstamp, derived_tstamp
     "c": {"<shred key>": [entity, ...], ...},   # kept entity keys, if any
     "u": ["<unstruct shred key>", data]}        # data only if kept; absent if not unstruct

Atomic values travel as their validated TSV text, so decoding needs no re-validation.
"""

from __future__ import annotations

import logging
from collections.abc import KeysView, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from signals_stream.errors import BadEvent
from signals_stream.events.atomic_types import convert, to_json_value
from signals_stream.events.fields import (
    ATOMIC_FIELD_NAMES,
    FIELD_COUNT,
    FIELD_INDEX,
    FIELD_NAMES,
    FIELD_TYPES,
    JSON_FIELDS,
    FieldType,
)

__all__ = ["ATOMIC_INDEX", "Event", "Projection"]

logger = logging.getLogger(__name__)

_EVENT_ID = FIELD_INDEX["event_id"]
_LAT, _LON = FIELD_INDEX["geo_latitude"], FIELD_INDEX["geo_longitude"]
_STRING = FieldType.STRING
_PROJECTION_VERSION = 1

#: Name (canonical or alias) -> TSV index, for the 128 atomic fields only.
ATOMIC_INDEX: dict[str, int] = {n: i for n, i in FIELD_INDEX.items() if i not in JSON_FIELDS}
_ATOMIC_ITEMS: tuple[tuple[str, int, FieldType], ...] = tuple(
    (n, FIELD_INDEX[n], FIELD_TYPES[FIELD_INDEX[n]]) for n in ATOMIC_FIELD_NAMES
)
# Always carried by a projection: the event's id and times (identity travels separately).
_ALWAYS: tuple[tuple[str, int], ...] = tuple(
    (n, FIELD_INDEX[n]) for n in ("event_id", "collector_tstamp", "derived_tstamp")
)


class Event:
    """One enriched event. Built by the parse functions, not by callers.

    Attributes:
        event_id: the event's UUID.
        collector_tstamp_ms: collector time, epoch milliseconds.
        event_time_ms: ``derived_tstamp``, else ``collector_tstamp``, epoch milliseconds.
        event_vendor: identity vendor, e.g. ``com.snowplowanalytics.snowplow`` (see module doc).
        event_name: identity name, e.g. ``page_view`` or ``link_click``.
        event_version: identity version, e.g. ``1-0-1``.
        unstruct_key: shred key of the self-describing event, e.g.
            ``unstruct_event_com_snowplowanalytics_snowplow_link_click_1``.
        unstruct_data: its data object (``None`` if not an unstruct event, or not projected).
        logged_by: after :meth:`from_projection`, the state ids of the event logs whose fields
            the projection kept (an ingest stage on an older catalog kept fewer); ``None``
            when every field is there (a parsed event, or an all-fields projection).
    """

    __slots__ = (
        "_entities",
        "_fields",
        "_values",
        "collector_tstamp_ms",
        "event_id",
        "event_name",
        "event_time_ms",
        "event_vendor",
        "event_version",
        "logged_by",
        "unstruct_data",
        "unstruct_key",
    )

    def __init__(
        self,
        fields: list[str],
        entities: dict[str, list[dict[str, Any]]],
        unstruct_key: str | None,
        unstruct_data: dict[str, Any] | None,
        times: tuple[int, int],
        identity: tuple[str | None, str | None, str | None],
        logged_by: frozenset[str] | None = None,
    ) -> None:
        self._fields = fields  # 131 TSV texts, "" = null; the JSON fields are blanked
        self._entities = entities
        self._values: dict[int, Any] | None = None  # converted atomic values, by index
        self.event_id: str = fields[_EVENT_ID]
        self.collector_tstamp_ms, self.event_time_ms = times
        self.event_vendor, self.event_name, self.event_version = identity
        self.unstruct_key = unstruct_key
        self.unstruct_data = unstruct_data
        self.logged_by = logged_by

    def __repr__(self) -> str:
        return (
            f"Event({self.event_id}, {self.event_vendor}/{self.event_name}/{self.event_version}"
            f", t={self.event_time_ms})"
        )

    def atomic(self, name: str) -> Any:
        """The typed value of an atomic field.

        Args:
            name: one of the 128 atomic field names (``refr_device_tstamp`` is accepted for
                ``refr_dvce_tstamp``).

        Returns:
            ``None`` when empty; else ``str``, ``int``, ``float``, ``bool`` or a UTC
            ``datetime``. After :meth:`from_projection`, ``None`` for fields not projected.

        Raises:
            KeyError: for an unknown name or a JSON field (``contexts``, …).
        """
        index = ATOMIC_INDEX[name]
        text = self._fields[index]
        if not text:
            return None
        kind = FIELD_TYPES[index]
        if kind is _STRING:
            return text
        values = self._values
        if values is None:
            values = self._values = {}
        elif index in values:
            return values[index]
        value = values[index] = convert(kind, text)
        return value

    def entities(self, shred_key: str) -> list[dict[str, Any]]:
        """The entities of one shred key: those of ``contexts``, then ``derived_contexts``.

        Args:
            shred_key: e.g. ``contexts_com_snowplowanalytics_snowplow_web_page_1``.

        Returns:
            The entity data dicts (each with ``_schema_version`` when known); ``[]`` if none.
        """
        found = self._entities.get(shred_key)
        return [] if found is None else found

    @property
    def entity_keys(self) -> KeysView[str]:
        """The shred keys of the entities this event carries."""
        return self._entities.keys()

    def to_shredded_json(self) -> dict[str, Any]:
        """The Scala Analytics SDK's lossy JSON form (``toJson(lossy=true)``).

        Returns:
            All 128 atomic keys (``None`` when empty, timestamps ISO ``…Z`` with their original
            fractional digits), ``geo_location`` when latitude and longitude are set, one
            ``contexts_*`` list per shred key and the ``unstruct_event_*`` object.
        """
        fields = self._fields
        doc = {name: to_json_value(kind, fields[i]) for name, i, kind in _ATOMIC_ITEMS}
        if fields[_LAT] and fields[_LON]:
            doc["geo_location"] = f"{fields[_LAT]},{fields[_LON]}"
        doc.update(self._entities)
        if self.unstruct_key is not None:
            doc[self.unstruct_key] = self.unstruct_data
        return doc

    def project(self, projection: Projection) -> bytes:
        """Encode what ``projection`` keeps, compactly, for the repartition topic.

        The identity, ``event_id``, the times and the unstruct shred key are always kept.

        Args:
            projection: the fields, entities and event data downstream definitions need.

        Returns:
            orjson bytes, decoded by :meth:`from_projection`.
        """
        fields = self._fields
        entities: dict[str, list[dict[str, Any]]]
        if projection.all_fields:
            atomic = {FIELD_NAMES[i]: text for i, text in enumerate(fields) if text}
            entities = self._entities
            keep_data = True
        else:
            atomic = {name: fields[i] for name, i in _ALWAYS if fields[i]}
            for name, i in projection.atomic_fields:
                if fields[i]:
                    atomic[name] = fields[i]
            entities = {k: v for k, v in self._entities.items() if k in projection.entity_keys}
            keep_data = self.unstruct_key in projection.unstruct_keys
        doc: dict[str, Any] = {
            "v": _PROJECTION_VERSION,
            "t": (self.collector_tstamp_ms, self.event_time_ms),
            "i": (self.event_vendor, self.event_name, self.event_version),
            "a": atomic,
        }
        if entities:
            doc["c"] = entities
        if self.unstruct_key is not None:
            doc["u"] = (
                (self.unstruct_key, self.unstruct_data) if keep_data else (self.unstruct_key,)
            )
        if projection.all_fields:
            doc["l"] = "*"
        elif projection.logs:
            doc["l"] = sorted(projection.logs)
        return orjson.dumps(doc)

    @staticmethod
    def from_projection(raw: bytes) -> Event:
        """Decode the output of :meth:`project`.

        Args:
            raw: the bytes :meth:`project` wrote.

        Returns:
            An event with the same accessors; what was not projected reads as empty.

        Raises:
            BadEvent: ``InvalidProjection`` if ``raw`` is not such an encoding.
        """
        try:
            doc = orjson.loads(raw)
            if doc["v"] != _PROJECTION_VERSION:
                raise ValueError(f"unknown projection version {doc['v']!r}")
            fields = [""] * FIELD_COUNT
            for name, text in doc["a"].items():
                if type(text) is not str:
                    raise TypeError(f"{name} is not a string")
                fields[ATOMIC_INDEX[name]] = text
            collector_ms, event_ms = doc["t"]
            vendor, name, version = doc["i"]
            entities = doc.get("c", {})
            unstruct: Sequence[Any] = doc.get("u") or (None,)
            if not fields[_EVENT_ID] or type(collector_ms) is not int or type(entities) is not dict:
                raise ValueError("event_id, times or entities missing")
            logs = doc.get("l", ())
            return Event(
                fields,
                entities,
                unstruct[0],
                unstruct[1] if len(unstruct) > 1 else None,
                (collector_ms, event_ms),
                (vendor, name, version),
                None if logs == "*" else frozenset(map(str, logs)),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BadEvent("InvalidProjection", str(exc)) from exc


@dataclass(frozen=True, slots=True)
class Projection:
    """What downstream definitions need from an event; identity, id and times always travel.

    Attributes:
        atomic: atomic field names to keep (``refr_device_tstamp`` accepted).
        entity_keys: shred keys of the entities to keep.
        unstruct_keys: shred keys of self-describing events whose data to keep.
        logs: state ids of the event logs whose fields are kept; they travel with the event,
            so an owner on a newer catalog does not log an event projected without them.
        all_fields: keep everything.
        atomic_fields: derived: ``(canonical name, TSV index)`` of ``atomic``, by index.

    Raises:
        ValueError: for an unknown atomic field name.
    """

    atomic: frozenset[str] = frozenset()
    entity_keys: frozenset[str] = frozenset()
    unstruct_keys: frozenset[str] = frozenset()
    all_fields: bool = False
    logs: frozenset[str] = frozenset()
    atomic_fields: tuple[tuple[str, int], ...] = field(
        init=False, repr=False, compare=False, default=()
    )

    def __post_init__(self) -> None:
        unknown = sorted(n for n in self.atomic if n not in ATOMIC_INDEX)
        if unknown:
            raise ValueError(f"not atomic fields: {', '.join(unknown)}")
        for name in ("atomic", "entity_keys", "unstruct_keys", "logs"):
            object.__setattr__(self, name, frozenset(getattr(self, name)))
        pairs = {(FIELD_NAMES[ATOMIC_INDEX[n]], ATOMIC_INDEX[n]) for n in self.atomic}
        object.__setattr__(self, "atomic_fields", tuple(sorted(pairs, key=lambda p: p[1])))

    def __or__(self, other: Projection) -> Projection:
        """The projection keeping what either keeps."""
        return Projection(
            self.atomic | other.atomic,
            self.entity_keys | other.entity_keys,
            self.unstruct_keys | other.unstruct_keys,
            self.all_fields or other.all_fields,
            self.logs | other.logs,
        )
