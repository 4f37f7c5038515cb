"""Turn the warehouse-shaped dbt seed CSVs back into enriched TSV lines, for replay in tests.

The seeds (``shared/data/dbt-snowplow-*``, see its README, "Turning the B-seeds into TSV") hold
the atomic columns plus one column per self-describing schema with the JSON ``data`` only. A
line is rebuilt as Enrich would have written it:

* The 131 fields in :data:`~.fields.FIELD_NAMES` order; a missing column is ``""``
  (``refr_device_tstamp`` is accepted for ``refr_dvce_tstamp``; ``load_tstamp`` is dropped).
* Atomic values are copied verbatim except booleans (``true``/``TRUE`` -> ``1``, ``false`` ->
  ``0``) and timestamps (``2022-12-22 13:25:47.718000+00:00`` -> ``2022-12-22 13:25:47.718``:
  UTC, exactly 3 fractional digits, none dropped here because the seeds have none below 1 ms).
  The atomic ``event_vendor`` / ``event_name`` / ``event_version`` stay as the seed has them,
  even where Enrich would have derived others (774 ecommerce rows say ``ecommerce.tracking``).
* ``event_id``: Enrich only writes UUIDs, but the web seed pseudonymised 25 of them (hex hashes,
  or UUIDs with a non-hex digit). Those become :func:`seed_event_id` (a UUID 5 of the seed's
  text): deterministic, distinct, and equal where the seed's ids are equal (its "dupe"
  cases). Real UUIDs are kept as they are.
* ``contexts`` (tracked entities) and ``derived_contexts`` (the enrichment entities of the web
  seed: ua_parser, yauaa, IAB spiders) get the ``contexts/jsonschema/1-0-1`` wrapper with one
  item per array element; ``unstruct_event`` gets the ``unstruct_event/jsonschema/1-0-0``
  wrapper. Schema URIs come from :data:`SEED_COLUMNS` (the vendor's dots cannot be recovered
  from a column name). An entity's version is its column's; the event's is the atomic
  ``event_version`` when the atomic vendor and name are the column's schema and the major
  agrees (Enrich derives the atomic columns from that schema, and the seeds name columns
  ``_1_0_0`` for 1-0-1 and 1-0-2 events), else the column's.
* **Values as the tracker sends them.** The warehouse stringifies some typed schema fields
  (``"price": "12.0"``, ``"is_guest": "true"``). Fields the Iglu schema types as number, integer
  or boolean (:attr:`SeedColumn.typed`) become JSON numbers/booleans again, written as a
  JavaScript tracker writes them: ``"12.0"`` -> ``12`` (``JSON.stringify(12.0)`` is ``12``),
  ``"13.2"`` -> ``13.2``. Values the seed already holds as JSON numbers are kept as they are.
* The warehouse has a column per schema property and fills the absent ones with ``null``; a
  tracker sends only what was set, so ``null`` members are dropped (an entity left empty, e.g.
  ``web_page`` ``{"id": null}``, stays as ``{}``). Arrays nested one level too deep by the
  warehouse export (``[[{...}]]`` in the web seed) are flattened.
* A value with a tab or a line break, an unknown self-describing column or two events on one
  row raise :class:`ValueError`: Enrich never writes such a line, so a new seed must be mapped.

Conversions are cached per process (:func:`functools.cache`), so every test module of a pytest
session shares one parse of each CSV.
"""

from __future__ import annotations

import csv
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any, Literal

from signals_stream.events.fields import FIELD_ALIASES, FIELD_NAMES, FIELD_TYPES, FieldType
from tests.datafiles import DATA_DIR

__all__ = [
    "CONTEXTS_SCHEMA",
    "ECOMMERCE_SEED",
    "SEED_COLUMNS",
    "UNSTRUCT_SCHEMA",
    "WEB_SEED",
    "SeedColumn",
    "row_to_tsv",
    "seed_event_id",
    "seed_rows",
    "seed_tsv",
]

ECOMMERCE_SEED = "dbt-snowplow-ecommerce/snowplow_ecommerce_events.csv"
WEB_SEED = "dbt-snowplow-web/snowplow_web_events.csv"
CONTEXTS_SCHEMA = "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-1"
UNSTRUCT_SCHEMA = "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0"

Kind = Literal["contexts", "derived_contexts", "unstruct_event"]
Typed = Literal["number", "integer", "boolean"]


@dataclass(frozen=True, slots=True)
class SeedColumn:
    """Where one self-describing seed column goes.

    Attributes:
        uri: the schema, ``iglu:<vendor>/<name>/jsonschema/<M-m-p>``.
        kind: the TSV field it is rebuilt into.
        typed: the members the Iglu schema types as number, integer or boolean.
    """

    uri: str
    kind: Kind
    typed: Mapping[str, Typed] = field(default_factory=dict)

    @property
    def vendor_name(self) -> tuple[str, str]:
        """The schema's vendor and name."""
        vendor, name = self.uri.removeprefix("iglu:").split("/")[:2]
        return vendor, name

    @property
    def version(self) -> str:
        """The schema's ``M-m-p`` version."""
        return self.uri.rsplit("/", 1)[1]


_ECOM = "com.snowplowanalytics.snowplow.ecommerce"
_SP = "com.snowplowanalytics.snowplow"

#: Column name -> schema, for every self-describing column of the two seeds.
SEED_COLUMNS: dict[str, SeedColumn] = {
    # Both seeds.
    "contexts_com_snowplowanalytics_snowplow_web_page_1_0_0": SeedColumn(
        f"iglu:{_SP}/web_page/jsonschema/1-0-0", "contexts"
    ),
    # Ecommerce seed (schemas of the snowplow-ecommerce plugins, iglu central).
    "unstruct_event_com_snowplowanalytics_snowplow_ecommerce_snowplow_ecommerce_action_1_0_0": (
        SeedColumn(f"iglu:{_ECOM}/snowplow_ecommerce_action/jsonschema/1-0-0", "unstruct_event")
    ),
    "contexts_com_snowplowanalytics_snowplow_ecommerce_user_1_0_0": SeedColumn(
        f"iglu:{_ECOM}/user/jsonschema/1-0-0", "contexts", {"is_guest": "boolean"}
    ),
    "contexts_com_snowplowanalytics_snowplow_ecommerce_page_1_0_0": SeedColumn(
        f"iglu:{_ECOM}/page/jsonschema/1-0-0", "contexts"
    ),
    "contexts_com_snowplowanalytics_snowplow_ecommerce_cart_1_0_0": SeedColumn(
        f"iglu:{_ECOM}/cart/jsonschema/1-0-0", "contexts", {"total_value": "number"}
    ),
    "contexts_com_snowplowanalytics_snowplow_ecommerce_product_1_0_0": SeedColumn(
        f"iglu:{_ECOM}/product/jsonschema/1-0-0",
        "contexts",
        {"price": "number", "list_price": "number", "quantity": "integer", "position": "integer"},
    ),
    "contexts_com_snowplowanalytics_snowplow_ecommerce_checkout_step_1_0_0": SeedColumn(
        f"iglu:{_ECOM}/checkout_step/jsonschema/1-0-0",
        "contexts",
        {"step": "integer", "marketing_opt_in": "boolean"},
    ),
    "contexts_com_snowplowanalytics_snowplow_ecommerce_transaction_1_0_0": SeedColumn(
        f"iglu:{_ECOM}/transaction/jsonschema/1-0-0",
        "contexts",
        {
            "revenue": "number",
            "total_quantity": "integer",
            "tax": "number",
            "shipping": "number",
            "discount_amount": "number",
            "credit_order": "boolean",
        },
    ),
    "contexts_com_snowplowanalytics_snowplow_client_session_1_0_1": SeedColumn(
        f"iglu:{_SP}/client_session/jsonschema/1-0-1",
        "contexts",
        {"sessionIndex": "integer", "eventIndex": "integer"},
    ),
    "contexts_com_snowplowanalytics_mobile_screen_1_0_0": SeedColumn(
        "iglu:com.snowplowanalytics.mobile/screen/jsonschema/1-0-0", "contexts"
    ),
    # Web seed.
    "unstruct_event_com_snowplowanalytics_snowplow_consent_preferences_1_0_0": SeedColumn(
        f"iglu:{_SP}/consent_preferences/jsonschema/1-0-0",
        "unstruct_event",
        {"gdpr_applies": "boolean"},
    ),
    "unstruct_event_com_snowplowanalytics_snowplow_cmp_visible_1_0_0": SeedColumn(
        f"iglu:{_SP}/cmp_visible/jsonschema/1-0-0", "unstruct_event", {"elapsed_time": "number"}
    ),
    "contexts_com_iab_snowplow_spiders_and_robots_1_0_0": SeedColumn(
        "iglu:com.iab.snowplow/spiders_and_robots/jsonschema/1-0-0",
        "derived_contexts",
        {"spiderOrRobot": "boolean"},
    ),
    "contexts_com_snowplowanalytics_snowplow_ua_parser_context_1_0_0": SeedColumn(
        f"iglu:{_SP}/ua_parser_context/jsonschema/1-0-0", "derived_contexts"
    ),
    "contexts_nl_basjes_yauaa_context_1_0_0": SeedColumn(
        "iglu:nl.basjes/yauaa_context/jsonschema/1-0-0", "derived_contexts"
    ),
}

# Warehouse-only columns with no TSV field.
_DROPPED = frozenset({"load_tstamp"})
_BOOL_TEXT = {"true": "1", "false": "0", "1": "1", "0": "0"}
_UUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
# Fixed, so converted ids are stable across runs and machines.
_EVENT_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "signals-stream:dbt-seed-event-id")


def seed_event_id(text: str) -> str:
    """The ``event_id`` a seed's id becomes: itself if a UUID, else a UUID 5 of its text.

    Args:
        text: the seed's ``event_id`` cell.

    Returns:
        A canonical UUID string.
    """
    if _UUID.fullmatch(text):
        return text
    return str(uuid.uuid5(_EVENT_ID_NAMESPACE, text))


@cache
def seed_rows(relative: str) -> tuple[dict[str, str], ...]:
    """The rows of a seed CSV, as text (cached).

    Args:
        relative: path under ``shared/data``, e.g. :data:`ECOMMERCE_SEED`.

    Returns:
        One dict per row, column name -> cell text (``""`` for an empty cell). Treat as
        read-only: the tuple is shared by every caller.
    """
    with (DATA_DIR / relative).open(newline="", encoding="utf-8") as handle:
        return tuple(csv.DictReader(handle))


@cache
def seed_tsv(relative: str) -> tuple[str, ...]:
    """Every row of a seed as an enriched TSV line (no trailing newline), in file order (cached).

    Args:
        relative: path under ``shared/data``, e.g. :data:`ECOMMERCE_SEED`.

    Returns:
        One line per row, aligned with :func:`seed_rows`.
    """
    return tuple(row_to_tsv(row) for row in seed_rows(relative))


def row_to_tsv(row: Mapping[str, str]) -> str:
    """Rebuild one enriched TSV line from a seed row (see the module docstring for the rules).

    Args:
        row: column name -> cell text, as :func:`seed_rows` returns.

    Returns:
        The 131 tab-separated fields.

    Raises:
        ValueError: an unknown column, a value Enrich could not have written in TSV, or two
            self-describing events on one row.
    """
    atomic: dict[str, str] = {}
    entities: dict[str, list[dict[str, Any]]] = {"contexts": [], "derived_contexts": []}
    unstruct: dict[str, Any] | None = None
    for column, text in row.items():
        if column in _DROPPED:
            continue
        if column.startswith(("contexts_", "unstruct_event_")):
            spec = SEED_COLUMNS.get(column)
            if spec is None:
                raise ValueError(f"no schema for seed column {column!r}: add it to SEED_COLUMNS")
            items = [_typed_object(item, spec) for item in _json_items(column, text)]
            if spec.kind != "unstruct_event":
                entities[spec.kind] += [{"schema": spec.uri, "data": item} for item in items]
            elif items:
                if unstruct is not None or len(items) > 1:
                    raise ValueError(f"{column}: more than one self-describing event on a row")
                unstruct = {"schema": _event_uri(spec, row), "data": items[0]}
            continue
        name = FIELD_ALIASES.get(column, column)
        if name not in FIELD_NAMES:
            raise ValueError(f"unknown seed column {column!r}")
        atomic[name] = text
    out: list[str] = []
    for name, kind in zip(FIELD_NAMES, FIELD_TYPES, strict=True):
        if kind is FieldType.JSON:
            if name == "unstruct_event":
                out.append("" if unstruct is None else _sdj(UNSTRUCT_SCHEMA, unstruct))
            else:
                items = entities[name]
                out.append(_sdj(CONTEXTS_SCHEMA, items) if items else "")
            continue
        out.append(_atomic_text(name, kind, atomic.get(name, "")))
    return "\t".join(out)


def _atomic_text(name: str, kind: FieldType, text: str) -> str:
    if not text:
        return ""
    if "\t" in text or "\n" in text or "\r" in text:
        raise ValueError(f"{name}: a tab or line break cannot appear in an enriched TSV field")
    if name == "event_id":
        return seed_event_id(text)
    if kind is FieldType.BOOL:
        try:
            return _BOOL_TEXT[text.lower()]
        except KeyError:
            raise ValueError(f"{name}: {text!r} is not a boolean") from None
    if kind is FieldType.TSTAMP:
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
        return parsed.isoformat(sep=" ", timespec="milliseconds")
    return text


def _json_items(column: str, text: str) -> list[dict[str, Any]]:
    if not text:
        return []
    value = json.loads(text)
    items: list[Any] = []
    # Contexts are arrays; unstruct cells are an object or a one-element array; the web
    # seed's export sometimes nests the array once more.
    for item in value if isinstance(value, list) else [value]:
        items.extend(item if isinstance(item, list) else [item])
    if not all(isinstance(item, dict) for item in items):
        raise ValueError(f"{column}: expected JSON objects, got {text[:80]!r}")
    return items


def _typed_object(data: dict[str, Any], spec: SeedColumn) -> dict[str, Any]:
    return {
        key: _typed_value(spec.typed.get(key), value)
        for key, value in data.items()
        if value is not None
    }


def _typed_value(typed: Typed | None, value: Any) -> Any:
    if typed is None or not isinstance(value, str):
        return value
    if typed == "boolean":
        lowered = value.lower()
        if lowered not in ("true", "false"):
            raise ValueError(f"{value!r} is not a boolean")
        return lowered == "true"
    number = float(value)
    if typed == "integer" or number.is_integer():
        # JSON.stringify writes 12.0 as 12; an integer field is an int anyway.
        if not number.is_integer():
            raise ValueError(f"{value!r} is not an integer")
        return int(number)
    return number


def _event_uri(spec: SeedColumn, row: Mapping[str, str]) -> str:
    vendor, name = spec.vendor_name
    version = row.get("event_version", "")
    same_schema = (row.get("event_vendor"), row.get("event_name")) == (vendor, name)
    if same_schema and version.split("-")[0] == spec.version.split("-")[0]:
        return f"iglu:{vendor}/{name}/jsonschema/{version}"
    return spec.uri


def _sdj(schema: str, data: Any) -> str:
    # Compact like Enrich; non-ASCII kept as UTF-8.
    return json.dumps({"schema": schema, "data": data}, separators=(",", ":"), ensure_ascii=False)
