"""Snowplow enriched events: parse a Kafka record into an :class:`Event` (the hot path).

A record is either the 131-field TSV that Enrich writes, or the JSON form the analytics SDKs
produce (lossy "shredded" keys, or ``contexts`` / ``unstruct_event`` as self-describing JSON).
:func:`parse_record` tells them apart by the first non-space byte (``{`` means JSON).

**Good or bad is decided at parse time; typed values are built lazily.** Parsing splits the
line, validates every typed atomic field (one regular expression per type over the non-empty
values, see :func:`~signals_stream.events.atomic_types.validate_row`), decodes and validates the
three JSON fields and groups their entities by shred key. Reading a value
(:meth:`Event.atomic`) converts its text then and caches it.

**Which records are rejected** (:class:`~signals_stream.errors.BadEvent`, ``reason``):

* ``NotUtf8``: the bytes are not strict UTF-8.
* ``NotTSV``: no tab at all (and not JSON); ``FieldNumberMismatch(n)``: ``n`` != 131 fields.
  Only one trailing ``\\n`` or ``\\r\\n`` is removed: trailing empty fields are real.
* ``MissingEventId``, ``MissingCollectorTstamp``.
* ``InvalidValue(<field>)``: any bad int / float / bool, or an ``event_id`` that is not a UUID.
* ``InvalidTimestamp(<field>)``: any bad timestamp (negative years, year 0, Feb 30, offsets).
  Like the Scala Analytics SDK, one bad typed field rejects the event rather than being nulled:
  Enrich writes these fields from typed values, so a bad one means a corrupt record.
* ``InvalidJson(<field>)`` / ``InvalidSchema(<field>)``: see :mod:`.self_describing`.
* ``InvalidJson(record)``: a JSON-form record that is not a JSON object.

Not checked (unlike the Scala SDK): ``v_collector`` / ``v_etl`` being present, string lengths.

**Event identity** (:attr:`Event.event_vendor` / ``event_name`` / ``event_version``): the
atomic ``event_vendor`` / ``event_name`` / ``event_version`` when vendor and name are set;
otherwise the self-describing event's schema; otherwise, for the baked-in events
(``page_view``, ``page_ping``, ``transaction``, ``transaction_item``, ``struct``), the fixed
schema Enrich would have written. Generator data leaves those columns empty.

**Entities** of ``contexts`` and ``derived_contexts`` share one namespace of shred keys; the
derived ones are appended after the tracker's ones. Entity dicts carry ``_schema_version``.
Returned dicts and lists are the event's own: treat them as read-only.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

import orjson

from signals_stream.errors import BadEvent
from signals_stream.events.atomic_types import json_to_text, validate_row
from signals_stream.events.event import ATOMIC_INDEX, Event, Projection
from signals_stream.events.fields import (
    FIELD_COUNT,
    FIELD_INDEX,
    FIELD_TYPES,
    JSON_FIELDS,
    FieldType,
)
from signals_stream.events.self_describing import (
    MAX_DEPTH,
    SchemaKey,
    add_contexts,
    add_shredded_contexts,
    check_depth,
    check_shredded_unstruct,
    decode_contexts,
    decode_unstruct,
    load_json_field,
    read_unstruct,
    shred_key,
)

__all__ = [
    "Event",
    "Projection",
    "parse_json",
    "parse_record",
    "parse_tsv",
    "shred_key",
]

logger = logging.getLogger(__name__)

_CONTEXTS, _UNSTRUCT, _DERIVED = JSON_FIELDS
_EVENT = FIELD_INDEX["event"]
_VENDOR, _NAME, _VERSION = (FIELD_INDEX[n] for n in ("event_vendor", "event_name", "event_version"))
# Enrich's fixed schemas for events that are not self-describing (SchemaEnrichment).
_BAKED_IN: dict[str, tuple[str, str, str]] = {
    "page_view": ("com.snowplowanalytics.snowplow", "page_view", "1-0-0"),
    "page_ping": ("com.snowplowanalytics.snowplow", "page_ping", "1-0-0"),
    "transaction": ("com.snowplowanalytics.snowplow", "transaction", "1-0-0"),
    "transaction_item": ("com.snowplowanalytics.snowplow", "transaction_item", "1-0-0"),
    "struct": ("com.google.analytics", "event", "1-0-0"),
}
_JSON_START = re.compile(rb"[ \t\r\n]*\{")
_IS_STRING = tuple(kind is FieldType.STRING for kind in FIELD_TYPES)

# An unstruct event as parsed: (shred key, data, schema) where the schema is unknown (None)
# when it came from a lossy JSON key.
_Unstruct = tuple[str, dict[str, Any], SchemaKey | None]


def parse_record(raw: bytes) -> Event:
    """Parse one Kafka record value: enriched TSV, or its JSON form if it starts with ``{``.

    Args:
        raw: the record value.

    Returns:
        The event.

    Raises:
        BadEvent: the record cannot be used; ``reason`` says why (see the module doc).
    """
    first = raw[:1]
    if first == b"{" or (first.isspace() and _JSON_START.match(raw) is not None):
        return parse_json(raw)
    return parse_tsv(raw)


def parse_tsv(raw: bytes | str) -> Event:
    """Parse one enriched event in the 131-field TSV format.

    Args:
        raw: the line, as UTF-8 bytes or text; one trailing ``\\n`` / ``\\r\\n`` is ignored.

    Returns:
        The event.

    Raises:
        BadEvent: see the module doc.
    """
    if type(raw) is bytes:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadEvent("NotUtf8", str(exc)) from exc
    else:
        text = _decode(raw)
    fields = text.split("\t")
    last = fields[-1]
    if last[-1:] == "\n":  # trimming the last field is cheaper than copying the line
        fields[-1] = last[:-2] if last[-2:-1] == "\r" else last[:-1]
    if len(fields) != FIELD_COUNT:
        if len(fields) == 1:
            raise BadEvent("NotTSV", "no tab in the record")
        raise BadEvent(f"FieldNumberMismatch({len(fields)})", f"expected {FIELD_COUNT} fields")
    times = validate_row(fields)
    # The bracket count bounds the nesting depth of all three JSON fields at once.
    deep = text.count("{") + text.count("[") > MAX_DEPTH
    entities: dict[str, list[dict[str, Any]]] = {}
    unstruct: _Unstruct | None = None
    if fields[_CONTEXTS]:
        decode_contexts("contexts", fields[_CONTEXTS], deep, entities)
    if fields[_UNSTRUCT]:
        key, data = decode_unstruct(fields[_UNSTRUCT], deep)
        unstruct = (key.unstruct_key, data, key)
    if fields[_DERIVED]:
        decode_contexts("derived_contexts", fields[_DERIVED], deep, entities)
    fields[_CONTEXTS] = fields[_UNSTRUCT] = fields[_DERIVED] = ""
    return _event(fields, times, entities, unstruct)


def parse_json(raw: bytes | str) -> Event:
    """Parse the JSON form of an enriched event, as the Snowplow analytics SDKs produce it.

    Both forms are accepted, even mixed: lossy (``contexts_*`` lists and one
    ``unstruct_event_*`` object) and non-lossy (``contexts`` / ``derived_contexts`` /
    ``unstruct_event`` as self-describing JSON; ``null``, ``""`` or ``{}`` when empty). Atomic
    keys take JSON values of their type or the TSV text; unknown keys (``geo_location``, …)
    are ignored.

    Args:
        raw: one JSON object, as UTF-8 bytes or text.

    Returns:
        The event. After a lossy record its identity cannot fall back to the unstruct schema
        (the key does not keep the vendor's dots).

    Raises:
        BadEvent: see the module doc; ``InvalidJson(record)`` if not a JSON object.
    """
    if isinstance(raw, str):
        _decode(raw)  # rejects lone surrogates as NotUtf8, like bytes input
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        _decode(raw)
        raise BadEvent("InvalidJson(record)", str(exc)) from exc
    if type(doc) is not dict:
        raise BadEvent("InvalidJson(record)", "not a JSON object")
    check_depth("record", raw, doc)
    fields = [""] * FIELD_COUNT
    sdj: dict[str, Any] = {}
    shredded: list[tuple[str, Any]] = []
    index_of = ATOMIC_INDEX.get
    for key, value in doc.items():
        index = index_of(key)
        if index is not None:
            if value is None:
                continue
            # Strings of string fields are most values; the rest is checked by json_to_text.
            if type(value) is str and _IS_STRING[index]:
                fields[index] = value
            else:
                fields[index] = json_to_text(index, value)
        elif key in ("contexts", "unstruct_event", "derived_contexts"):
            sdj[key] = value
        elif key.startswith(("contexts_", "unstruct_event_")):
            shredded.append((key, value))
    times = validate_row(fields)
    return _event(fields, times, *_json_entities(sdj, shredded))


def _json_entities(
    sdj: dict[str, Any], shredded: Iterable[tuple[str, Any]]
) -> tuple[dict[str, list[dict[str, Any]]], _Unstruct | None]:
    entities: dict[str, list[dict[str, Any]]] = {}
    unstruct: _Unstruct | None = None
    for name in ("contexts", "unstruct_event", "derived_contexts"):
        wrapper = sdj.get(name)
        if type(wrapper) is str and wrapper:
            wrapper = load_json_field(name, wrapper, True)
        if wrapper is None or wrapper == "" or wrapper == {}:
            continue
        if name == "unstruct_event":
            schema, data = read_unstruct(wrapper)
            unstruct = (schema.unstruct_key, data, schema)
        else:
            add_contexts(name, wrapper, entities)
    for key, value in shredded:
        if key.startswith("contexts_"):
            add_shredded_contexts(key, value, entities)
        elif value is not None:
            check_shredded_unstruct(key, value)
            if unstruct is not None:
                raise BadEvent("InvalidJson(unstruct_event)", "more than one self-describing event")
            unstruct = (key, value, None)
    return entities, unstruct


def _decode(raw: bytes | str) -> str:
    try:
        if isinstance(raw, str):
            if not raw.isascii():
                raw.encode("utf-8")
            return raw
        return raw.decode("utf-8")
    except UnicodeError as exc:
        raise BadEvent("NotUtf8", str(exc)) from exc


def _event(
    fields: list[str],
    times: tuple[int, int],
    entities: dict[str, list[dict[str, Any]]],
    unstruct: _Unstruct | None,
) -> Event:
    identity: tuple[str | None, str | None, str | None]
    if fields[_VENDOR] and fields[_NAME]:
        identity = (fields[_VENDOR], fields[_NAME], fields[_VERSION] or None)
    elif unstruct is not None and unstruct[2] is not None:
        schema = unstruct[2]
        identity = (schema.vendor, schema.name, schema.version)
    elif unstruct is None and fields[_EVENT] in _BAKED_IN:
        identity = _BAKED_IN[fields[_EVENT]]
    else:
        identity = (fields[_VENDOR] or None, fields[_NAME] or None, fields[_VERSION] or None)
    if unstruct is None:
        return Event(fields, entities, None, None, times, identity)
    return Event(fields, entities, unstruct[0], unstruct[1], times, identity)
