"""Tracker protocol -> enriched event: one tracker event's parameters to the 131-field TSV line.

Pure (no I/O): the HTTP edge (:mod:`signals_stream.collector.server`) passes the request's
parameters and what only the edge knows (:class:`RequestContext`: receipt time, the network
user id cookie, the user agent and address). This does the part of Snowplow's Collector and
Enrich that the engine reads, for development (Snowplow Micro's role), not their enrichments
(no IP lookups, UA parsing, referer parser, PII or schema validation against Iglu).

**Mapping** (the tracker protocol's parameter -> enriched field; :data:`PLAIN_FIELDS` and the
functions below): strings are made TSV-safe as Enrich does (a tab becomes four spaces, other
control characters are removed, an empty result is null); ``dtm``/``stm``/``ttm`` are epoch
milliseconds; ``e`` names the event type (:data:`EVENT_TYPES`); ``url`` and ``refr`` are split
into scheme, host, port (the scheme's default when not explicit, as Enrich does), path, query and
fragment; ``utm_*`` of the page URL give ``mkt_*`` (Enrich's campaign attribution defaults);
``cx``/``co`` and ``ue_px``/``ue_pr`` are base64url (padding optional) or plain self-describing
JSON, rewritten compactly with the wrappers Enrich writes; the event's schema gives
``event_vendor``/``event_name``/``event_format``/``event_version`` (fixed schemas for the baked-in
events, as Enrich's SchemaEnrichment). ``derived_tstamp`` follows Enrich: ``true_tstamp`` if set,
else ``collector - (sent - created)`` when both device times exist and created < sent, else the
collector time.

**Rejected** (:class:`~signals_stream.errors.BadEvent`, reason names the parameter): an unknown or
missing ``e``, an ``eid`` that is not a UUID, a bad number / timestamp / dimension / boolean, JSON
that does not decode or is not the self-describing shape its parameter needs, a ``ue`` without
its event, a value that is not a string or number.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from signals_stream.errors import BadEvent
from signals_stream.events.fields import FIELD_COUNT, FIELD_INDEX
from signals_stream.events.self_describing import check_depth

__all__ = [
    "CONTEXTS_SCHEMA",
    "EVENT_TYPES",
    "PAYLOAD_DATA_SCHEMA_PREFIX",
    "PLAIN_FIELDS",
    "UNSTRUCT_SCHEMA",
    "RequestContext",
    "enriched_fields",
    "enriched_tsv",
    "payload_events",
]

PAYLOAD_DATA_SCHEMA_PREFIX = "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-"
# The wrappers current Enrich writes (MiscEnrichments.formatContexts / formatUnstructEvent).
CONTEXTS_SCHEMA = "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-1"
UNSTRUCT_SCHEMA = "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0"
_CONTEXTS_WRAPPER = re.compile(r"iglu:com\.snowplowanalytics\.snowplow/contexts/jsonschema/1-0-\d+")
_UNSTRUCT_WRAPPER = re.compile(
    r"iglu:com\.snowplowanalytics\.snowplow/unstruct_event/jsonschema/1-0-\d+"
)
_IGLU_URI = re.compile(
    r"iglu:([a-zA-Z0-9_.\-]+)/([a-zA-Z0-9_\-]+)/([a-zA-Z0-9_\-]+)/([1-9][0-9]*(?:-(?:0|[1-9][0-9]*)){2})"
)

# ``e`` -> the ``event`` field.
EVENT_TYPES: dict[str, str] = {
    "pv": "page_view",
    "pp": "page_ping",
    "se": "struct",
    "ue": "unstruct",
    "tr": "transaction",
    "ti": "transaction_item",
}
_BAKED_IN_SCHEMAS: dict[str, tuple[str, str, str, str]] = {
    "page_view": ("com.snowplowanalytics.snowplow", "page_view", "jsonschema", "1-0-0"),
    "page_ping": ("com.snowplowanalytics.snowplow", "page_ping", "jsonschema", "1-0-0"),
    "transaction": ("com.snowplowanalytics.snowplow", "transaction", "jsonschema", "1-0-0"),
    "transaction_item": (
        "com.snowplowanalytics.snowplow",
        "transaction_item",
        "jsonschema",
        "1-0-0",
    ),
    "struct": ("com.google.analytics", "event", "jsonschema", "1-0-0"),
}
_PLATFORMS = frozenset({"web", "mob", "pc", "srv", "app", "tv", "cnsl", "iot", "headset"})

# Parameters copied to one string field (made TSV-safe).
PLAIN_FIELDS: dict[str, str] = {
    "aid": "app_id",
    "tna": "name_tracker",
    "tv": "v_tracker",
    "uid": "user_id",
    "duid": "domain_userid",
    "sid": "domain_sessionid",
    "fp": "user_fingerprint",
    "tz": "os_timezone",
    "lang": "br_lang",
    "cs": "doc_charset",
    "cd": "br_colordepth",
    "page": "page_title",
    "se_ca": "se_category",
    "se_ac": "se_action",
    "se_la": "se_label",
    "se_pr": "se_property",
    "tr_id": "tr_orderid",
    "tr_af": "tr_affiliation",
    "tr_ci": "tr_city",
    "tr_st": "tr_state",
    "tr_co": "tr_country",
    "tr_cu": "tr_currency",
    "ti_id": "ti_orderid",
    "ti_sk": "ti_sku",
    "ti_nm": "ti_name",
    "ti_ca": "ti_category",
    "ti_cu": "ti_currency",
}
_INT_FIELDS: dict[str, str] = {
    "vid": "domain_sessionidx",
    "tid": "txn_id",
    "ti_qu": "ti_quantity",
    "pp_mix": "pp_xoffset_min",
    "pp_max": "pp_xoffset_max",
    "pp_miy": "pp_yoffset_min",
    "pp_may": "pp_yoffset_max",
}
_DECIMAL_FIELDS: dict[str, str] = {
    "se_va": "se_value",
    "tr_tt": "tr_total",
    "tr_tx": "tr_tax",
    "tr_sh": "tr_shipping",
    "ti_pr": "ti_price",
}
_BOOL_FIELDS: dict[str, str] = {
    "cookie": "br_cookies",
    "f_pdf": "br_features_pdf",
    "f_fla": "br_features_flash",
    "f_java": "br_features_java",
    "f_dir": "br_features_director",
    "f_qt": "br_features_quicktime",
    "f_realp": "br_features_realplayer",
    "f_wma": "br_features_windowsmedia",
    "f_gears": "br_features_gears",
    "f_ag": "br_features_silverlight",
}
_DIMENSIONS: dict[str, tuple[str, str]] = {
    "res": ("dvce_screenwidth", "dvce_screenheight"),
    "vp": ("br_viewwidth", "br_viewheight"),
    "ds": ("doc_width", "doc_height"),
}
_TSTAMPS: dict[str, str] = {
    "dtm": "dvce_created_tstamp",
    "stm": "dvce_sent_tstamp",
    "ttm": "true_tstamp",
}
_CAMPAIGN: dict[str, str] = {
    "utm_medium": "mkt_medium",
    "utm_source": "mkt_source",
    "utm_term": "mkt_term",
    "utm_content": "mkt_content",
    "utm_campaign": "mkt_campaign",
}
_INT_TEXT = re.compile(r"-?[0-9]{1,10}")
_DECIMAL_TEXT = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_DIMENSION_TEXT = re.compile(r"([0-9]{1,9})x([0-9]{1,9})")
_EPOCH_MS = re.compile(r"[0-9]{1,15}")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_MAX_INT = 2**31 - 1
# Year 9999's last millisecond: later instants cannot be written as yyyy-MM-dd.
_MAX_EPOCH_MS = 253402300799999
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What the HTTP edge knows about the request that carried the events."""

    collector_tstamp: datetime  # receipt time (UTC)
    etl_tstamp: datetime  # when this mapping ran (UTC)
    network_userid: str | None  # the collector's cookie (or the anonymous id)
    useragent: str | None  # the User-Agent header
    ip_address: str | None
    v_collector: str
    v_etl: str
    new_event_id: str = ""  # used when the event carries no ``eid``


def payload_events(body: bytes) -> list[dict[str, Any]]:
    """The events of a ``POST /tp2`` body (``payload_data`` 1-0-x: ``{"schema", "data": [..]}``).

    Raises:
        BadEvent: the body is not that JSON (``InvalidJson(body)``, ``InvalidSchema(body)``).
    """
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadEvent("InvalidJson(body)", str(exc)) from exc
    if not isinstance(doc, dict):
        raise BadEvent("InvalidSchema(body)", "the body is not a JSON object")
    schema = doc.get("schema")
    if not isinstance(schema, str) or not schema.startswith(PAYLOAD_DATA_SCHEMA_PREFIX):
        raise BadEvent("InvalidSchema(body)", f"expected {PAYLOAD_DATA_SCHEMA_PREFIX}*")
    data = doc.get("data")
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise BadEvent("InvalidSchema(body)", "data must be a list of objects")
    return data


def enriched_tsv(params: Mapping[str, Any], context: RequestContext) -> str:
    """One tracker event as the enriched 131-field TSV line (no newline)."""
    fields = enriched_fields(params, context)
    row = [""] * FIELD_COUNT
    for name, value in fields.items():
        row[FIELD_INDEX[name]] = value
    return "\t".join(row)


def enriched_fields(params: Mapping[str, Any], context: RequestContext) -> dict[str, str]:
    """The non-empty enriched fields of one tracker event, as their TSV text, by name.

    Raises:
        BadEvent: see the module doc.
    """
    text = {name: _param_text(name, value) for name, value in params.items()}
    out: dict[str, str] = {}

    event_code = text.get("e")
    if not event_code:
        raise BadEvent("MissingParameter(e)", "every tracker event names its type in e")
    event = EVENT_TYPES.get(event_code)
    if event is None:
        raise BadEvent("InvalidValue(e)", f"unknown event type {event_code[:40]!r}")
    out["event"] = event

    event_id = text.get("eid") or context.new_event_id
    try:
        out["event_id"] = str(uuid.UUID(event_id))
    except ValueError as exc:
        raise BadEvent("InvalidValue(eid)", "the event id is not a UUID") from exc

    platform = text.get("p")
    if platform:
        if platform not in _PLATFORMS:
            raise BadEvent("InvalidValue(p)", f"unknown platform {platform[:40]!r}")
        out["platform"] = platform

    for param, field in PLAIN_FIELDS.items():
        _put(out, field, text.get(param))
    for param, field in _INT_FIELDS.items():
        if value := text.get(param):
            out[field] = _int_text(param, value)
    for param, field in _DECIMAL_FIELDS.items():
        if value := text.get(param):
            if not _DECIMAL_TEXT.fullmatch(value):
                raise BadEvent(f"InvalidValue({param})", "not a decimal number")
            out[field] = value
    for param, field in _BOOL_FIELDS.items():
        if value := text.get(param):
            if value not in ("0", "1"):
                raise BadEvent(f"InvalidValue({param})", "expected 0 or 1")
            out[field] = value
    for param, (width, height) in _DIMENSIONS.items():
        if value := text.get(param):
            match = _DIMENSION_TEXT.fullmatch(value)
            if match is None or int(match[1]) > _MAX_INT or int(match[2]) > _MAX_INT:
                raise BadEvent(f"InvalidValue({param})", "expected WIDTHxHEIGHT")
            out[width], out[height] = match[1], match[2]

    device_times: dict[str, datetime] = {}
    for param, field in _TSTAMPS.items():
        if value := text.get(param):
            device_times[param] = _epoch_ms(param, value)
            out[field] = _format_tstamp(device_times[param])
    out["collector_tstamp"] = _format_tstamp(context.collector_tstamp)
    out["etl_tstamp"] = _format_tstamp(context.etl_tstamp)
    out["derived_tstamp"] = _format_tstamp(
        derived_tstamp(
            context.collector_tstamp,
            device_times.get("dtm"),
            device_times.get("stm"),
            device_times.get("ttm"),
        )
    )
    out["v_collector"] = context.v_collector
    out["v_etl"] = context.v_etl

    # The tracker's values win over what the request showed (as in Enrich).
    _put(out, "network_userid", text.get("tnuid") or text.get("nuid") or context.network_userid)
    _put(out, "useragent", text.get("ua") or context.useragent)
    _put(out, "user_ipaddress", text.get("ip") or context.ip_address)

    page_url = _safe(text.get("url"))
    if page_url:
        out["page_url"] = page_url
        query = _put_url_parts(out, "page", page_url)
        for utm, field in _CAMPAIGN.items():
            if values := query.get(utm):
                _put(out, field, values[0])
    referrer = _safe(text.get("refr"))
    if referrer:
        out["page_referrer"] = referrer
        _put_url_parts(out, "refr", referrer)

    contexts = _json_param(text, "cx", "co")
    if contexts is not None:
        out["contexts"] = _contexts_text(contexts)
    unstruct = _json_param(text, "ue_px", "ue_pr")
    if event == "unstruct":
        if unstruct is None:
            raise BadEvent("MissingParameter(ue_pr)", "a self-describing event needs ue_px/ue_pr")
        inner_schema, unstruct_text = _unstruct_text(unstruct)
        out["unstruct_event"] = unstruct_text
        vendor, name, fmt, version = inner_schema
    else:
        vendor, name, fmt, version = _BAKED_IN_SCHEMAS[event]
    out["event_vendor"], out["event_name"] = vendor, name
    out["event_format"], out["event_version"] = fmt, version
    return out


def derived_tstamp(
    collector: datetime,
    created: datetime | None,
    sent: datetime | None,
    true_time: datetime | None,
) -> datetime:
    """Enrich's event time: the true time, else the collector time less the device's delay.

    A delay that would put the event before 1970 (a device clock set millennia off) is not
    credible: the collector time stands (and nothing underflows ``datetime``)."""
    if true_time is not None:
        return true_time
    if created is not None and sent is not None and created < sent:
        delay = sent - created
        if delay <= collector - _EPOCH:
            return collector - delay
    return collector


def _param_text(name: str, value: Any) -> str:
    if isinstance(value, str):
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:  # a lone surrogate
                raise BadEvent(f"InvalidValue({name[:40]})", "not valid Unicode") from exc
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadEvent(f"InvalidValue({name[:40]})", "tracker parameters are strings")
    return str(value)


def _safe(value: str | None) -> str | None:
    """Enrich's toTsvSafe: tabs become four spaces, other control characters go."""
    if not value:
        return None
    cleaned = _CONTROL.sub("", value.replace("\t", "    "))
    return cleaned or None


def _put(out: dict[str, str], field: str, value: str | None) -> None:
    cleaned = _safe(value)
    if cleaned is not None:
        out[field] = cleaned


def _int_text(param: str, value: str) -> str:
    if not _INT_TEXT.fullmatch(value) or not -(2**31) <= int(value) <= _MAX_INT:
        raise BadEvent(f"InvalidValue({param})", "not a 32-bit integer")
    return str(int(value))


def _epoch_ms(param: str, value: str) -> datetime:
    if not _EPOCH_MS.fullmatch(value) or int(value) > _MAX_EPOCH_MS:
        raise BadEvent(f"InvalidTimestamp({param})", "expected epoch milliseconds")
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=int(value))


def _format_tstamp(moment: datetime) -> str:
    """Enrich's ``yyyy-MM-dd HH:mm:ss.SSS`` in UTC."""
    moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%d %H:%M:%S}.{moment.microsecond // 1000:03d}"


def _put_url_parts(out: dict[str, str], prefix: str, url: str) -> dict[str, list[str]]:
    """Split a URL into ``<prefix>_url*`` fields; returns its query parameters. A URL that
    does not split (no scheme or host, a bad port) keeps only its whole text, as Enrich."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return {}
    if not parts.scheme or not parts.hostname:
        return {}
    out[f"{prefix}_urlscheme"] = parts.scheme
    out[f"{prefix}_urlhost"] = parts.hostname
    explicit_or_default = port if port is not None else _DEFAULT_PORTS.get(parts.scheme)
    if explicit_or_default is not None:
        out[f"{prefix}_urlport"] = str(explicit_or_default)
    _put(out, f"{prefix}_urlpath", parts.path)
    _put(out, f"{prefix}_urlquery", parts.query)
    _put(out, f"{prefix}_urlfragment", parts.fragment)
    return parse_qs(parts.query)


def _json_param(text: Mapping[str, str], encoded: str, plain: str) -> Any:
    """The JSON of ``encoded`` (base64url) if present, else of ``plain``; None when neither."""
    if value := text.get(encoded):
        try:
            raw = base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_", validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadEvent(f"InvalidBase64({encoded})", str(exc)) from exc
        name = encoded
    elif value := text.get(plain):
        raw, name = value.encode("utf-8", "surrogatepass"), plain
    else:
        return None
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadEvent(f"InvalidJson({name})", str(exc)) from exc
    check_depth(name, raw, doc)  # the engine's parser refuses deeper JSON
    return doc


def _schema_parts(uri: Any, param: str) -> tuple[str, str, str, str]:
    match = _IGLU_URI.fullmatch(uri) if isinstance(uri, str) else None
    if match is None:
        raise BadEvent(f"InvalidSchema({param})", f"not an Iglu schema URI: {str(uri)[:80]!r}")
    return match[1], match[2], match[3], match[4]


def _self_describing(doc: Any, param: str) -> tuple[tuple[str, str, str, str], Any]:
    if not isinstance(doc, dict) or "data" not in doc:
        raise BadEvent(f"InvalidSchema({param})", "expected {'schema': ..., 'data': ...}")
    return _schema_parts(doc.get("schema"), param), doc["data"]


def _contexts_text(doc: Any) -> str:
    if not isinstance(doc, dict) or not _CONTEXTS_WRAPPER.fullmatch(str(doc.get("schema"))):
        raise BadEvent("InvalidSchema(co)", "expected the contexts 1-0-* wrapper")
    entities = doc.get("data")
    if not isinstance(entities, list):
        raise BadEvent("InvalidSchema(co)", "contexts data must be a list")
    for entity in entities:
        _, data = _self_describing(entity, "co")
        if not isinstance(data, dict):
            raise BadEvent("InvalidSchema(co)", "an entity's data must be an object")
    return _compact({"schema": CONTEXTS_SCHEMA, "data": entities}, "co")


def _unstruct_text(doc: Any) -> tuple[tuple[str, str, str, str], str]:
    if not isinstance(doc, dict) or not _UNSTRUCT_WRAPPER.fullmatch(str(doc.get("schema"))):
        raise BadEvent("InvalidSchema(ue_pr)", "expected the unstruct_event 1-0-* wrapper")
    inner = doc.get("data")
    schema, data = _self_describing(inner, "ue_pr")
    if not isinstance(data, dict):
        raise BadEvent("InvalidSchema(ue_pr)", "the event's data must be an object")
    return schema, _compact({"schema": UNSTRUCT_SCHEMA, "data": inner}, "ue_pr")


def _compact(doc: Any, param: str) -> str:
    """Compact JSON; orjson escapes every control character, so no tab or newline is left."""
    try:
        return orjson.dumps(doc).decode("utf-8")
    except (TypeError, UnicodeEncodeError) as exc:  # lone surrogates, over-deep
        raise BadEvent(f"InvalidJson({param})", str(exc)) from exc
