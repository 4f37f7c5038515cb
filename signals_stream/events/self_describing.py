"""Self-describing JSON of an enriched event: Iglu URIs, shred keys, contexts and unstruct.

``contexts`` (#52) and ``derived_contexts`` (#122) hold
``{"schema":"iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-*","data":[<SDJ>…]}``
and ``unstruct_event`` (#58) holds
``{"schema":"iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-*","data":<SDJ>}``
where each ``<SDJ>`` is ``{"schema":"iglu:<vendor>/<name>/<format>/<M-m-p>","data":{…}}``.

Entities are grouped by shred key (Scala-SDK naming, see :func:`shred_key`) into lists:
``contexts`` first, then ``derived_contexts`` *appended* to the same lists (the SDKs let the
derived ones overwrite). Each entity dict gets ``_schema_version`` (``"1-0-2"``) as in the
Scala SDK 3.2, so callers can filter on the minor version.

Failure reasons (``<field>`` is ``contexts``, ``derived_contexts`` or ``unstruct_event``):

* ``InvalidJson(<field>)``: not JSON, or not shaped as self-describing JSON (not an object,
  no ``schema``/``data``, contexts ``data`` not a list, an entity or event whose ``data`` is not
  an object), or nested deeper than :data:`MAX_DEPTH`.
* ``InvalidSchema(<field>)``: a ``schema`` that is not a valid Iglu URI, or a wrapper that is
  not ``contexts`` / ``unstruct_event`` ``1-0-*``.

Entity data must be a JSON object (Iglu entity schemas describe objects): this keeps
:meth:`Event.entities` a list of dicts. The depth limit keeps every parsed event encodable by
orjson (whose encoder stops at 254 levels).
"""

from __future__ import annotations

import logging
import re
from typing import Any, NamedTuple

import orjson

from signals_stream.errors import BadEvent

__all__ = [
    "MAX_DEPTH",
    "SchemaKey",
    "add_contexts",
    "add_shredded_contexts",
    "check_depth",
    "check_shredded_unstruct",
    "decode_contexts",
    "decode_unstruct",
    "load_json_field",
    "parse_schema",
    "read_unstruct",
    "shred_key",
]

logger = logging.getLogger(__name__)

#: Deepest nesting accepted in a JSON field (or a JSON-form record). orjson encodes up to
#: about 254 levels; a projection adds at most one level to the field's own nesting.
MAX_DEPTH = 200

_IGLU_RE = re.compile(
    r"iglu:([a-zA-Z0-9_.\-]+)/([a-zA-Z0-9_\-]+)/[a-zA-Z0-9_\-]+"
    r"/(([1-9][0-9]*)-(?:0|[1-9][0-9]*)-(?:0|[1-9][0-9]*))",
    re.ASCII,
)
_CAMEL_RE = re.compile(r"([^A-Z_])([A-Z])")
_CONTEXTS_WRAPPER = "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-"
_UNSTRUCT_WRAPPER = "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-"
_SHRED_KINDS = ("contexts", "unstruct_event")
_CACHE_LIMIT = 10_000


class SchemaKey(NamedTuple):
    """A parsed Iglu URI with its two shred keys.

    Attributes:
        vendor: ``com.snowplowanalytics.snowplow``.
        name: ``link_click``.
        version: ``1-0-1``.
        contexts_key: ``contexts_com_snowplowanalytics_snowplow_link_click_1``.
        unstruct_key: ``unstruct_event_com_snowplowanalytics_snowplow_link_click_1``.
    """

    vendor: str
    name: str
    version: str
    contexts_key: str
    unstruct_key: str


def shred_key(kind: str, vendor: str, name: str, major: int) -> str:
    """The shredded-JSON key of a schema, with the Scala Analytics SDK's naming.

    The vendor's ``.`` and ``-`` become ``_``; the name's too, then CamelCase becomes
    snake_case (``([^A-Z_])([A-Z])`` -> ``$1_$2``); everything is lowercased; only the major
    version is kept.

    Args:
        kind: ``"contexts"`` or ``"unstruct_event"``.
        vendor: Iglu vendor, e.g. ``com.snowplowanalytics.snowplow.ecommerce``.
        name: schema name, e.g. ``product`` or ``PerformanceTiming``.
        major: the MODEL part of the version.

    Returns:
        e.g. ``contexts_com_snowplowanalytics_snowplow_ecommerce_product_1``.

    Raises:
        ValueError: for another ``kind``.
    """
    if kind not in _SHRED_KINDS:
        raise ValueError(f"kind must be 'contexts' or 'unstruct_event', not {kind!r}")
    vendor_part = vendor.replace(".", "_").replace("-", "_").lower()
    name_part = _CAMEL_RE.sub(r"\1_\2", name.replace(".", "_").replace("-", "_")).lower()
    return f"{kind}_{vendor_part}_{name_part}_{major}"


# Iglu URIs repeat endlessly in a stream, so each is parsed once. Bounded against junk input.
_SCHEMAS: dict[str, SchemaKey] = {}


def parse_schema(uri: Any) -> SchemaKey | None:
    """Parse an Iglu URI (``iglu:vendor/name/format/M-m-p``), with a cache.

    Args:
        uri: the ``schema`` value of a self-describing JSON (any JSON value).

    Returns:
        The parsed key, or ``None`` if ``uri`` is not a valid Iglu URI.
    """
    if type(uri) is not str:
        return None
    key = _SCHEMAS.get(uri)
    if key is not None:
        return key
    match = _IGLU_RE.fullmatch(uri)
    if match is None:
        return None
    vendor, name, version, major = match.groups()
    key = SchemaKey(
        vendor,
        name,
        version,
        shred_key("contexts", vendor, name, int(major)),
        shred_key("unstruct_event", vendor, name, int(major)),
    )
    if len(_SCHEMAS) >= _CACHE_LIMIT:
        _SCHEMAS.clear()
    _SCHEMAS[uri] = key
    return key


def load_json_field(field: str, text: str, deep: bool) -> Any:
    """Decode the text of a JSON field.

    Args:
        field: the field name, for the failure reason.
        text: its (non-empty) TSV text.
        deep: whether the text may nest deeper than :data:`MAX_DEPTH` (the caller's bracket
            count over the record exceeds it); only then is the depth checked.

    Returns:
        The decoded JSON.

    Raises:
        BadEvent: ``InvalidJson(<field>)``.
    """
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise BadEvent(f"InvalidJson({field})", str(exc)) from exc
    if deep:
        check_depth(field, text, value)
    return value


def check_depth(field: str, text: str | bytes, value: Any) -> None:
    """Reject JSON nested deeper than :data:`MAX_DEPTH`.

    The bracket count bounds the depth, so the walk runs only for large documents.

    Args:
        field: the field name (or ``record``), for the failure reason.
        text: the JSON text ``value`` was decoded from.
        value: the decoded JSON.

    Raises:
        BadEvent: ``InvalidJson(<field>)``.
    """
    if isinstance(text, str):
        brackets = text.count("{") + text.count("[")
    else:
        brackets = text.count(b"{") + text.count(b"[")
    if brackets <= MAX_DEPTH:
        return
    if type(value) not in (dict, list):
        return
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise BadEvent(f"InvalidJson({field})", f"nested deeper than {MAX_DEPTH} levels")
        children = node.values() if type(node) is dict else node
        stack.extend((child, depth + 1) for child in children if type(child) in (dict, list))


# Wrapper URIs already accepted (1-0-0, 1-0-1, ...): a set lookup instead of a parse.
_WRAPPERS: dict[str, set[str]] = {_CONTEXTS_WRAPPER: set(), _UNSTRUCT_WRAPPER: set()}


def _unwrap(field: str, wrapper: Any, prefix: str) -> Any:
    try:
        schema, data = wrapper["schema"], wrapper["data"]
    except (KeyError, TypeError, IndexError):
        raise BadEvent(f"InvalidJson({field})", "not a self-describing JSON object") from None
    if type(wrapper) is not dict:
        raise BadEvent(f"InvalidJson({field})", "not a self-describing JSON object")
    seen = _WRAPPERS[prefix]
    if type(schema) is str and schema in seen:
        return data
    addition = schema[len(prefix) :] if type(schema) is str and schema.startswith(prefix) else ""
    if not (addition.isascii() and addition.isdigit() and (addition == "0" or addition[0] != "0")):
        expected = prefix.removeprefix("iglu:") + "*"
        raise BadEvent(f"InvalidSchema({field})", f"schema {schema!r:.100} is not {expected}")
    if len(seen) < 100:
        seen.add(schema)
    return data


def _entity(field: str, item: Any) -> tuple[SchemaKey, dict[str, Any]]:
    if type(item) is not dict:
        raise BadEvent(f"InvalidJson({field})", "an entity is not a JSON object")
    key = parse_schema(item.get("schema"))
    if key is None:
        raise BadEvent(f"InvalidSchema({field})", f"not an Iglu URI: {item.get('schema')!r:.100}")
    data = item.get("data")
    if type(data) is not dict:
        raise BadEvent(f"InvalidJson({field})", f"data of {key.vendor}/{key.name} is not an object")
    return key, data


def add_contexts(field: str, wrapper: Any, out: dict[str, list[dict[str, Any]]]) -> None:
    """Validate a contexts wrapper and append its entities to ``out`` by shred key.

    Args:
        field: ``contexts`` or ``derived_contexts``.
        wrapper: the decoded JSON of the field.
        out: shred key -> entities; updated in place. Each entity dict gets
            ``_schema_version``.

    Raises:
        BadEvent: ``InvalidJson(<field>)`` or ``InvalidSchema(<field>)``.
    """
    # Fast paths everywhere: a known wrapper and entities whose schema was seen before. Any
    # miss takes the slow function, which validates, caches or raises.
    try:
        schema, items = wrapper["schema"], wrapper["data"]
        known = schema in _WRAPPERS[_CONTEXTS_WRAPPER]
    except (KeyError, TypeError, IndexError):
        known = False
    if not known:
        items = _unwrap(field, wrapper, _CONTEXTS_WRAPPER)
    if type(items) is not list:
        raise BadEvent(f"InvalidJson({field})", "contexts data is not a list")
    schemas = _SCHEMAS
    for item in items:
        try:
            key = schemas[item["schema"]]
            data = item["data"]
        except (KeyError, TypeError, IndexError):
            key, data = _entity(field, item)
        if type(data) is not dict:  # item["schema"] worked, so item is a dict
            key, data = _entity(field, item)
        # The dict is freshly decoded and ours: tagging it in place saves a copy.
        data["_schema_version"] = key.version
        entities = out.get(key.contexts_key)
        if entities is None:
            out[key.contexts_key] = [data]
        else:
            entities.append(data)


def read_unstruct(wrapper: Any) -> tuple[SchemaKey, dict[str, Any]]:
    """Validate an unstruct_event wrapper.

    Args:
        wrapper: the decoded JSON of the field.

    Returns:
        The event's schema key and its data object (``{}`` allowed).

    Raises:
        BadEvent: ``InvalidJson(unstruct_event)`` or ``InvalidSchema(unstruct_event)``.
    """
    try:
        inner = wrapper["data"]
        if wrapper["schema"] in _WRAPPERS[_UNSTRUCT_WRAPPER]:
            key, data = _SCHEMAS[inner["schema"]], inner["data"]
            if type(data) is dict:
                return key, data
    except (KeyError, TypeError, IndexError):
        pass
    return _entity("unstruct_event", _unwrap("unstruct_event", wrapper, _UNSTRUCT_WRAPPER))


def decode_contexts(
    field: str, text: str, deep: bool, out: dict[str, list[dict[str, Any]]]
) -> None:
    """Decode a contexts field's text and append its entities to ``out``.

    Args:
        field: ``contexts`` or ``derived_contexts``.
        text: the field's (non-empty) TSV text.
        deep: whether to check the nesting depth (see :func:`load_json_field`).
        out: shred key -> entities; updated in place.

    Raises:
        BadEvent: ``InvalidJson(<field>)`` or ``InvalidSchema(<field>)``.
    """
    try:
        wrapper = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise BadEvent(f"InvalidJson({field})", str(exc)) from exc
    if deep:
        check_depth(field, text, wrapper)
    add_contexts(field, wrapper, out)


def decode_unstruct(text: str, deep: bool) -> tuple[SchemaKey, dict[str, Any]]:
    """Decode the unstruct_event field's text.

    Args:
        text: the field's (non-empty) TSV text.
        deep: whether to check the nesting depth (see :func:`load_json_field`).

    Returns:
        The event's schema key and its data object.

    Raises:
        BadEvent: ``InvalidJson(unstruct_event)`` or ``InvalidSchema(unstruct_event)``.
    """
    try:
        wrapper = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise BadEvent("InvalidJson(unstruct_event)", str(exc)) from exc
    if deep:
        check_depth("unstruct_event", text, wrapper)
    return read_unstruct(wrapper)


_SHREDDED_CONTEXTS_RE = re.compile(r"contexts_[a-z0-9_\-]+_[1-9][0-9]*", re.ASCII)
_SHREDDED_UNSTRUCT_RE = re.compile(r"unstruct_event_[a-z0-9_\-]+_[1-9][0-9]*", re.ASCII)


def add_shredded_contexts(key: str, entities: Any, out: dict[str, list[dict[str, Any]]]) -> None:
    """Append the entities of one ``contexts_*`` key of the lossy JSON form to ``out``.

    Args:
        key: the shred key, e.g. ``contexts_com_snowplowanalytics_snowplow_web_page_1``.
        entities: its JSON value: a list of objects (``null`` means none).
        out: shred key -> entities; updated in place.

    Raises:
        BadEvent: ``InvalidSchema(contexts)`` for a malformed key, ``InvalidJson(contexts)``
            for a value that is not a list of objects.
    """
    if _SHREDDED_CONTEXTS_RE.fullmatch(key) is None:
        raise BadEvent("InvalidSchema(contexts)", f"not a shred key: {key!r:.100}")
    if entities is None:
        return
    if type(entities) is not list or any(type(e) is not dict for e in entities):
        raise BadEvent("InvalidJson(contexts)", f"{key} is not a list of objects")
    out.setdefault(key, []).extend(entities)


def check_shredded_unstruct(key: str, data: Any) -> None:
    """Check one ``unstruct_event_*`` key of the lossy JSON form and its value.

    Args:
        key: the shred key, e.g. ``unstruct_event_com_snowplowanalytics_snowplow_link_click_1``.
        data: its JSON value: the event's data object.

    Raises:
        BadEvent: ``InvalidSchema(unstruct_event)`` for a malformed key,
            ``InvalidJson(unstruct_event)`` for a value that is not an object.
    """
    if _SHREDDED_UNSTRUCT_RE.fullmatch(key) is None:
        raise BadEvent("InvalidSchema(unstruct_event)", f"not a shred key: {key!r:.100}")
    if type(data) is not dict:
        raise BadEvent("InvalidJson(unstruct_event)", f"{key} is not an object")
