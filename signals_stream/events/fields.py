"""The 131 fields of a Snowplow enriched event, in TSV order (0-based), and their types.

Field 121 is ``refr_dvce_tstamp`` (Enrich, Scala SDK and the atomic schema); the Python and Go
analytics SDKs call it ``refr_device_tstamp`` (see :data:`FIELD_ALIASES`).

Types follow the Scala Analytics SDK 3.2 (``Option[Int]`` / ``Option[Double]`` /
``Option[Boolean]`` / ``Option[Instant]``): the decimals (``se_value``, ``tr_*``, ``ti_price*``)
are floats, as there (the Python SDK 0.2.3 keeps ``se_value`` a string). Three fields hold
self-describing JSON and are not atomic (the atomic schema has the other 128).
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "ATOMIC_FIELD_NAMES",
    "FIELD_ALIASES",
    "FIELD_COUNT",
    "FIELD_INDEX",
    "FIELD_NAMES",
    "FIELD_TYPES",
    "JSON_FIELDS",
    "FieldType",
    "fields_of_type",
]


class FieldType(StrEnum):
    """The type of an enriched-event field, as text on the wire and as a Python value."""

    STRING = "string"  # str
    INT = "int"  # int, 32-bit signed ("123")
    FLOAT = "float"  # float ("37.443604", "1E-7")
    BOOL = "bool"  # bool ("1" / "0")
    TSTAMP = "tstamp"  # UTC datetime ("2021-10-15 09:05:29.634")
    JSON = "json"  # self-describing JSON (contexts, unstruct_event, derived_contexts)


FIELD_NAMES: tuple[str, ...] = (
    "app_id",
    "platform",
    "etl_tstamp",
    "collector_tstamp",
    "dvce_created_tstamp",
    "event",
    "event_id",
    "txn_id",
    "name_tracker",
    "v_tracker",
    "v_collector",
    "v_etl",
    "user_id",
    "user_ipaddress",
    "user_fingerprint",
    "domain_userid",
    "domain_sessionidx",
    "network_userid",
    "geo_country",
    "geo_region",
    "geo_city",
    "geo_zipcode",
    "geo_latitude",
    "geo_longitude",
    "geo_region_name",
    "ip_isp",
    "ip_organization",
    "ip_domain",
    "ip_netspeed",
    "page_url",
    "page_title",
    "page_referrer",
    "page_urlscheme",
    "page_urlhost",
    "page_urlport",
    "page_urlpath",
    "page_urlquery",
    "page_urlfragment",
    "refr_urlscheme",
    "refr_urlhost",
    "refr_urlport",
    "refr_urlpath",
    "refr_urlquery",
    "refr_urlfragment",
    "refr_medium",
    "refr_source",
    "refr_term",
    "mkt_medium",
    "mkt_source",
    "mkt_term",
    "mkt_content",
    "mkt_campaign",
    "contexts",
    "se_category",
    "se_action",
    "se_label",
    "se_property",
    "se_value",
    "unstruct_event",
    "tr_orderid",
    "tr_affiliation",
    "tr_total",
    "tr_tax",
    "tr_shipping",
    "tr_city",
    "tr_state",
    "tr_country",
    "ti_orderid",
    "ti_sku",
    "ti_name",
    "ti_category",
    "ti_price",
    "ti_quantity",
    "pp_xoffset_min",
    "pp_xoffset_max",
    "pp_yoffset_min",
    "pp_yoffset_max",
    "useragent",
    "br_name",
    "br_family",
    "br_version",
    "br_type",
    "br_renderengine",
    "br_lang",
    "br_features_pdf",
    "br_features_flash",
    "br_features_java",
    "br_features_director",
    "br_features_quicktime",
    "br_features_realplayer",
    "br_features_windowsmedia",
    "br_features_gears",
    "br_features_silverlight",
    "br_cookies",
    "br_colordepth",
    "br_viewwidth",
    "br_viewheight",
    "os_name",
    "os_family",
    "os_manufacturer",
    "os_timezone",
    "dvce_type",
    "dvce_ismobile",
    "dvce_screenwidth",
    "dvce_screenheight",
    "doc_charset",
    "doc_width",
    "doc_height",
    "tr_currency",
    "tr_total_base",
    "tr_tax_base",
    "tr_shipping_base",
    "ti_currency",
    "ti_price_base",
    "base_currency",
    "geo_timezone",
    "mkt_clickid",
    "mkt_network",
    "etl_tags",
    "dvce_sent_tstamp",
    "refr_domain_userid",
    "refr_dvce_tstamp",
    "derived_contexts",
    "domain_sessionid",
    "derived_tstamp",
    "event_vendor",
    "event_name",
    "event_format",
    "event_version",
    "event_fingerprint",
    "true_tstamp",
)
FIELD_COUNT = len(FIELD_NAMES)

#: Other spellings of a field name, mapped to the canonical one.
FIELD_ALIASES: dict[str, str] = {"refr_device_tstamp": "refr_dvce_tstamp"}

#: Field name (canonical or alias) -> TSV index.
FIELD_INDEX: dict[str, int] = {name: i for i, name in enumerate(FIELD_NAMES)}
FIELD_INDEX.update({alias: FIELD_INDEX[name] for alias, name in FIELD_ALIASES.items()})

_INT_FIELDS = frozenset({
    "txn_id", "domain_sessionidx", "page_urlport", "refr_urlport", "ti_quantity",
    "pp_xoffset_min", "pp_xoffset_max", "pp_yoffset_min", "pp_yoffset_max",
    "br_viewwidth", "br_viewheight", "dvce_screenwidth", "dvce_screenheight",
    "doc_width", "doc_height",
})  # fmt: skip
_FLOAT_FIELDS = frozenset({
    "geo_latitude", "geo_longitude", "se_value", "tr_total", "tr_tax", "tr_shipping",
    "ti_price", "tr_total_base", "tr_tax_base", "tr_shipping_base", "ti_price_base",
})  # fmt: skip
_BOOL_FIELDS = frozenset({
    "br_features_pdf", "br_features_flash", "br_features_java", "br_features_director",
    "br_features_quicktime", "br_features_realplayer", "br_features_windowsmedia",
    "br_features_gears", "br_features_silverlight", "br_cookies", "dvce_ismobile",
})  # fmt: skip
_TSTAMP_FIELDS = frozenset({
    "etl_tstamp", "collector_tstamp", "dvce_created_tstamp", "dvce_sent_tstamp",
    "refr_dvce_tstamp", "derived_tstamp", "true_tstamp",
})  # fmt: skip
_JSON_FIELDS = frozenset({"contexts", "unstruct_event", "derived_contexts"})


def _type_of(name: str) -> FieldType:
    for names, kind in (
        (_INT_FIELDS, FieldType.INT),
        (_FLOAT_FIELDS, FieldType.FLOAT),
        (_BOOL_FIELDS, FieldType.BOOL),
        (_TSTAMP_FIELDS, FieldType.TSTAMP),
        (_JSON_FIELDS, FieldType.JSON),
    ):
        if name in names:
            return kind
    return FieldType.STRING


#: The type of each field, by TSV index.
FIELD_TYPES: tuple[FieldType, ...] = tuple(_type_of(name) for name in FIELD_NAMES)

#: TSV indexes of the three self-describing JSON fields (52, 58, 122).
JSON_FIELDS: tuple[int, ...] = tuple(i for i, t in enumerate(FIELD_TYPES) if t is FieldType.JSON)

#: The 128 atomic field names (every field but the JSON ones), in TSV order.
ATOMIC_FIELD_NAMES: tuple[str, ...] = tuple(
    name for name, kind in zip(FIELD_NAMES, FIELD_TYPES, strict=True) if kind is not FieldType.JSON
)


def fields_of_type(kind: FieldType) -> tuple[int, ...]:
    """TSV indexes of the fields of one type, ascending.

    Args:
        kind: the field type.

    Returns:
        The indexes, e.g. the 7 timestamp fields for ``FieldType.TSTAMP``.
    """
    return tuple(i for i, t in enumerate(FIELD_TYPES) if t is kind)


assert FIELD_COUNT == 131
assert JSON_FIELDS == (52, 58, 122)
assert len(ATOMIC_FIELD_NAMES) == 128
assert all(n in FIELD_INDEX for n in _INT_FIELDS | _FLOAT_FIELDS | _BOOL_FIELDS | _TSTAMP_FIELDS)
