"""Attribute groups over the ecommerce seed, written as the SDK-style JSON bodies they publish.

Three keys: the built-ins ``domain_userid`` (group ``shopper``) and ``domain_sessionid``
(``session``), and a custom key ``ecom_user_id`` read from the ecommerce ``user`` entity's
``id`` (``ecom_user``). Together they use all 14 aggregations, every property kind (atomic,
event, entity with ``index``, calculated ``concat``/``sum``/``coalesce``/``max``, ``date_part``
on an atomic timestamp and on an ISO 8601 entity field), min/max of timestamps,
all ten criteria operators and both criteria blocks, lifetime and rolling ``period``, TTLs at
attribute, group and key level, and explicit and automatic defaults.

Most selectors give only the event name: 774 seed rows carry the atomic vendor
``ecommerce.tracking``, the others ``com.snowplowanalytics.snowplow.ecommerce``, and the
parsed identity is the atomic one.
"""

from __future__ import annotations

import copy
from typing import Any

from signals_stream.definitions import AttributeGroup, AttributeKey
from signals_stream.engine import Catalog

__all__ = [
    "ACTION_EVENTS",
    "DRAFT",
    "ECOM",
    "ECOM_USER",
    "ECOM_USER_KEY",
    "OWNER",
    "SESSION",
    "SHOPPER",
    "SHOPPER_V2",
    "action",
    "atomic",
    "build_catalog",
    "entity",
    "is_action",
    "parse_groups",
    "session_entity",
]

ECOM = "com.snowplowanalytics.snowplow.ecommerce"
OWNER = "engine-tests@example.com"
ACTION_EVENTS: list[dict[str, Any]] = [{"name": "snowplow_ecommerce_action"}]


def entity(name: str, path: str, index: int = 0) -> dict[str, Any]:
    """An ecommerce entity property (``product``, ``cart``, ``transaction``...)."""
    return {
        "type": "entity",
        "vendor": ECOM,
        "name": name,
        "major_version": 1,
        "path": path,
        "index": index,
    }


def session_entity(path: str) -> dict[str, Any]:
    """A field of the tracker's ``client_session`` entity."""
    return {
        "type": "entity",
        "vendor": "com.snowplowanalytics.snowplow",
        "name": "client_session",
        "major_version": 1,
        "path": path,
    }


def action(path: str = "type") -> dict[str, Any]:
    """A field of the ``snowplow_ecommerce_action`` self-describing event."""
    return {
        "type": "event",
        "vendor": ECOM,
        "name": "snowplow_ecommerce_action",
        "major_version": 1,
        "path": path,
    }


def atomic(name: str, date_part: str | None = None) -> dict[str, Any]:
    """An atomic column, optionally with a ``date_part``."""
    prop: dict[str, Any] = {"type": "atomic", "name": name}
    if date_part is not None:
        prop["date_part"] = date_part
    return prop


def is_action(*types: str) -> dict[str, Any]:
    """Criteria: the action ``type`` is one of ``types`` (``=`` for one, ``in`` for several)."""
    if len(types) == 1:
        return {"all": [{"property": action(), "operator": "=", "value": types[0]}]}
    return {"all": [{"property": action(), "operator": "in", "value": list(types)}]}


def _attr(name: str, type_: str, aggregation: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "type": type_,
        "events": extra.pop("events", ACTION_EVENTS),
        "aggregation": aggregation,
        **extra,
    }


SHOPPER_ATTRIBUTES: list[dict[str, Any]] = [
    # counter, `=` on an event property
    _attr("add_to_cart_count", "int32", "counter", criteria=is_action("add_to_cart")),
    # an exact vendor/name/version selector on the atomic identity
    _attr(
        "tracking_v100_events",
        "int64",
        "counter",
        events=[
            {
                "vendor": "ecommerce.tracking",
                "name": "snowplow_ecommerce_action",
                "version": "1-0-0",
            }
        ],
    ),
    # `any` block
    _attr(
        "cart_changes",
        "int32",
        "counter",
        criteria={
            "any": [
                {"property": action(), "operator": "=", "value": "add_to_cart"},
                {"property": action(), "operator": "=", "value": "remove_from_cart"},
            ]
        },
    ),
    # sum of an entity field
    _attr(
        "revenue",
        "double",
        "sum",
        property=entity("transaction", "revenue"),
        criteria=is_action("transaction"),
    ),
    # `>` on an entity number, together with `=` in one `all` block
    _attr(
        "big_orders",
        "int32",
        "counter",
        criteria={
            "all": [
                {"property": action(), "operator": "=", "value": "transaction"},
                {"property": entity("transaction", "revenue"), "operator": ">", "value": 20},
            ]
        },
    ),
    # min / max / mean, `in` and `<`
    _attr(
        "min_viewed_price",
        "double",
        "min",
        property=entity("product", "price"),
        criteria=is_action("product_view", "list_view"),
    ),
    _attr(
        "max_cheap_price",
        "double",
        "max",
        property=entity("product", "price"),
        criteria={"all": [{"property": entity("product", "price"), "operator": "<", "value": 15}]},
    ),
    _attr(
        "mean_cart_price",
        "double",
        "mean",
        property=entity("product", "price"),
        criteria=is_action("add_to_cart"),
    ),
    # first / last of an atomic column; `like`; an explicit default
    _attr(
        "first_page",
        "string",
        "first",
        events=[],
        property=atomic("page_urlpath"),
        criteria={
            "all": [{"property": atomic("page_url"), "operator": "like", "value": "%/product_"}]
        },
    ),
    _attr(
        "last_page",
        "string",
        "last",
        events=[],
        property=atomic("page_urlpath"),
        default_value="(none)",
    ),
    _attr("pages_seen", "string_list", "unique_list", events=[], property=atomic("page_urlpath")),
    # frequency reducers on an entity field
    _attr("fav_category", "string", "most_frequent", property=entity("product", "category")),
    _attr("rare_category", "string", "least_frequent", property=entity("product", "category")),
    # `is not null`
    _attr(
        "action_counts",
        "dict",
        "category_count",
        property=action(),
        criteria={"all": [{"property": action(), "operator": "is not null"}]},
    ),
    _attr(
        "distinct_products",
        "int64",
        "approx_count_distinct",
        property=entity("product", "id"),
    ),
    _attr("minutes_since_last", "double", "time_since_last", time_unit="min"),
    _attr("days_since_first", "double", "time_since_first", time_unit="d", events=[]),
    # entity `index` 1: the second product of the event
    _attr("last_second_category", "string", "last", property=entity("product", "category", 1)),
    # calculated properties
    _attr(
        "product_keys",
        "string_list",
        "unique_list",
        property={
            "type": "calculated",
            "operation": "concat",
            "separator": ":",
            "properties": [entity("product", "category"), entity("product", "id")],
        },
    ),
    _attr(
        "max_pair_price",
        "double",
        "max",
        property={
            "type": "calculated",
            "operation": "sum",
            "properties": [entity("product", "price"), entity("product", "price", 1)],
        },
    ),
    _attr(
        "name_or_page_type",
        "dict",
        "category_count",
        events=[],
        property={
            "type": "calculated",
            "operation": "coalesce",
            "properties": [action("name"), entity("page", "type")],
        },
    ),
    _attr(
        "max_price_or_cart",
        "double",
        "max",
        property={
            "type": "calculated",
            "operation": "max",
            "properties": [entity("product", "price"), entity("cart", "total_value")],
        },
    ),
    # date_part
    _attr(
        "peak_hour",
        "int32",
        "most_frequent",
        events=[],
        property=atomic("derived_tstamp", "hour_of_day"),
    ),
    _attr(
        "active_days",
        "string_list",
        "unique_list",
        events=[],
        property=atomic("derived_tstamp", "active_day"),
    ),
    # `>=`, `<=`, `!=` on an entity integer
    _attr(
        "late_checkout_steps",
        "int32",
        "counter",
        criteria={
            "all": [{"property": entity("checkout_step", "step"), "operator": ">=", "value": 2}]
        },
    ),
    _attr(
        "first_checkout_steps",
        "int32",
        "counter",
        criteria={
            "all": [{"property": entity("checkout_step", "step"), "operator": "<=", "value": 1}]
        },
    ),
    _attr(
        "non_hat_views",
        "int32",
        "counter",
        criteria={
            "all": [
                {"property": action(), "operator": "=", "value": "product_view"},
                {"property": entity("product", "category"), "operator": "!=", "value": "Hats"},
            ]
        },
    ),
    # `is null`: actions without a name
    _attr(
        "unnamed_actions",
        "int32",
        "counter",
        criteria={
            "all": [
                {"property": action(), "operator": "is not null"},
                {"property": action("name"), "operator": "is null"},
            ]
        },
    ),
    # rolling period
    _attr("events_30d", "int32", "counter", period="P30D"),
    # attribute ttl (overrides the group's)
    _attr("list_views", "int32", "counter", ttl="PT10M", criteria=is_action("list_view")),
]

SHOPPER: dict[str, Any] = {
    "name": "shopper",
    "version": 1,
    "owner": OWNER,
    "attribute_key": {"name": "domain_userid"},
    "ttl": "PT6H",
    "is_published": True,
    "attributes": SHOPPER_ATTRIBUTES,
}


def _shopper_v2() -> dict[str, Any]:
    by_name = {a["name"]: a for a in copy.deepcopy(SHOPPER_ATTRIBUTES)}
    renamed = {**by_name["add_to_cart_count"], "name": "cart_adds", "default_value": -1}
    return {
        **SHOPPER,
        "version": 2,
        "ttl": "P1D",
        "attributes": [
            by_name["revenue"],  # same definition, same name
            renamed,  # same definition, other name and default
            by_name["last_page"],
            _attr("transactions", "int32", "counter", criteria=is_action("transaction")),
        ],
    }


SHOPPER_V2 = _shopper_v2()

SESSION: dict[str, Any] = {
    "name": "session",
    "version": 1,
    "owner": OWNER,
    "attribute_key": {"name": "domain_sessionid", "key": "domain_sessionid"},
    "ttl": "PT30M",
    "is_published": True,
    "attributes": [
        _attr("events", "int32", "counter", events=[]),
        _attr("events_10m", "int32", "counter", events=[], period="PT10M"),
        _attr(
            "products_10m",
            "string_list",
            "unique_list",
            period="PT10M",
            property=entity("product", "id"),
        ),
        _attr("last_action", "string", "last", property=action(), default_value="idle"),
        _attr("max_cart_value", "double", "max", property=entity("cart", "total_value")),
        _attr("seconds_since_last", "double", "time_since_last", events=[], time_unit="s"),
    ],
}

ECOM_USER_KEY: dict[str, Any] = {
    "name": "ecom_user_id",
    "description": "The shop's user id, from the ecommerce user entity.",
    "property": entity("user", "id"),
    "owner": OWNER,
    "ttl": "P1D",
    "is_published": True,
}

ECOM_USER: dict[str, Any] = {
    "name": "ecom_user",
    "version": 1,
    "owner": OWNER,
    "attribute_key": {"name": "ecom_user_id"},
    "is_published": True,
    "attributes": [
        _attr("events", "int64", "counter", events=[]),
        _attr(
            "mobile_v101_events",
            "int32",
            "counter",
            events=[{"vendor": ECOM, "name": "snowplow_ecommerce_action", "version": "1-0-1"}],
        ),
        _attr(
            "sessions", "string_list", "unique_list", events=[], property=atomic("domain_sessionid")
        ),
        _attr(
            "cart_value_added",
            "double",
            "sum",
            property=entity("cart", "total_value"),
            criteria=is_action("add_to_cart"),
        ),
        _attr(
            "distinct_browsers",
            "int32",
            "approx_count_distinct",
            events=[],
            property=atomic("domain_userid"),
        ),
        _attr("hours_since_first", "float", "time_since_first", events=[], time_unit="h"),
        # date_part and min on an ISO 8601 entity field (the mobile client_session entity)
        _attr(
            "session_start_hour",
            "int32",
            "first",
            events=[],
            property={**session_entity("firstEventTimestamp"), "date_part": "hour_of_day"},
        ),
        _attr(
            "earliest_session_start",
            "timestamp",
            "min",
            events=[],
            property=session_entity("firstEventTimestamp"),
        ),
        _attr("last_seen", "timestamp", "max", events=[], property=atomic("derived_tstamp")),
    ],
}

# Never published: nothing may be computed or routed for it.
DRAFT: dict[str, Any] = {
    "name": "draft",
    "version": 1,
    "owner": OWNER,
    "attribute_key": {"name": "network_userid"},
    "is_published": False,
    "attributes": [_attr("events", "int32", "counter", events=[])],
}


def parse_groups(*bodies: dict[str, Any]) -> list[AttributeGroup]:
    """``AttributeGroup.parse`` of each body."""
    return [AttributeGroup.parse(body) for body in bodies]


def build_catalog(*bodies: dict[str, Any]) -> Catalog:
    """The catalog of ``bodies`` (default: every group here, the unpublished ``DRAFT``
    included), with the custom key registered."""
    chosen = bodies or (SHOPPER, SHOPPER_V2, SESSION, ECOM_USER, DRAFT)
    return Catalog.build(parse_groups(*chosen), [AttributeKey.parse(ECOM_USER_KEY)])
