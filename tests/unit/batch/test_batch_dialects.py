"""The batch SQL for Snowflake and BigQuery (not run here): it parses back in its own dialect to
the same tree, reads the layouts those loaders write (VARIANT columns; JSON or REPEATED
RECORD columns), and uses each warehouse's own functions where the dialects differ."""

from __future__ import annotations

import pytest
import sqlglot
from sqlglot import exp

from signals_stream.batch.compile import EventsTable, compile_group
from signals_stream.batch.dialects import DialectName
from signals_stream.definitions import AttributeGroup
from signals_stream.errors import DefinitionError
from signals_stream.warehouse.sql import TableRef
from tests.unit.batch.ecommerce_group import batch_group

_SELF_DESCRIBING = (
    "unstruct_event_com_snowplowanalytics_snowplow_ecommerce_snowplow_ecommerce_action_1_0_0",
    "contexts_com_snowplowanalytics_snowplow_ecommerce_product_1_0_0",
    "contexts_com_snowplowanalytics_snowplow_ecommerce_product_1_1_0",
    "contexts_com_snowplowanalytics_snowplow_ecommerce_cart_1_0_0",
    "contexts_com_snowplowanalytics_snowplow_ecommerce_user_1_0_0",
    "contexts_com_snowplowanalytics_snowplow_ecommerce_transaction_1_0_0",
    "contexts_com_snowplowanalytics_snowplow_event_specification_1_0_2",
)
_ATOMIC = {
    "event_id": "TEXT", "domain_userid": "TEXT", "derived_tstamp": "TIMESTAMP_TZ",
    "collector_tstamp": "TIMESTAMP_TZ", "page_url": "TEXT", "page_urlpath": "TEXT",
    "page_title": "TEXT", "geo_latitude": "FLOAT", "domain_sessionidx": "NUMBER",
    "event_vendor": "TEXT", "event_name": "TEXT", "event_version": "TEXT",
}  # fmt: skip


def _compiled(dialect: DialectName, json_type: str) -> str:
    types = {**_ATOMIC, **dict.fromkeys(_SELF_DESCRIBING, json_type)}
    table = EventsTable.of(TableRef("snowplow", "atomic", "events"), types, dialect)
    return compile_group(batch_group(), table, dialect=dialect, now_ms=None).sql


@pytest.mark.parametrize(
    ("dialect", "json_type"),
    [("snowflake", "VARIANT"), ("bigquery", "JSON"), ("bigquery", "ARRAY<STRUCT<id STRING>>")],
)
def test_the_sql_parses_back_to_the_same_query(dialect: DialectName, json_type: str) -> None:
    sql = _compiled(dialect, json_type)
    tree = sqlglot.parse_one(sql, read=dialect)
    assert tree.sql(dialect=dialect, pretty=True) == sql
    ctes = [cte.alias for cte in tree.find_all(exp.CTE)]
    assert ctes[:5] == ["__raw", "__src", "__gaps", "__ev", "__agg"]  # TTLs need the gaps
    assert len([c for c in ctes if c.startswith("__keyed_")]) == 9  # frequency + unique lists
    tables = {t.sql(dialect=dialect) for t in tree.find_all(exp.Table) if t.name == "events"}
    assert len(tables) == 1 and "snowplow" in next(iter(tables))
    outputs = [e.alias_or_name for e in tree.expressions]
    assert outputs == [
        "domain_userid",
        *(a.name for a in batch_group().attributes or ()),
        "computed_at",
    ]
    assert "FILTER" not in sql  # neither warehouse has aggregate FILTER clauses
    assert "CURRENT_TIMESTAMP" in sql  # now_ms=None: the clock of the run


def test_snowflake_reads_variant_columns_with_its_own_functions() -> None:
    sql = _compiled("snowflake", "VARIANT")
    needles = ("GET_PATH(", "TYPEOF(", "TRY_TO_DOUBLE(", "DATE_PART(EPOCH_MILLISECOND",
               "WITHIN GROUP (ORDER BY", "OBJECT_AGG(", "DAYOFWEEKISO(", "FLATTEN(")  # fmt: skip
    for needle in needles:
        assert needle in sql, needle
    assert "PARSE_JSON" not in sql  # VARIANT columns are read as they are


def test_bigquery_reads_json_and_record_columns() -> None:
    as_json = _compiled("bigquery", "JSON")
    for needle in ("JSON_QUERY(", "JSON_TYPE(", "UNIX_MILLIS(", "IGNORE NULLS", "LIMIT 1",
                   "SAFE_OFFSET(0)", "JSON_OBJECT(", "ISOWEEK"):  # fmt: skip
        assert needle in as_json, needle
    assert "TO_JSON(" not in as_json
    as_records = _compiled("bigquery", "ARRAY<STRUCT<id STRING>>")
    assert (
        "TO_JSON(`contexts_com_snowplowanalytics_snowplow_ecommerce_product_1_1_0`)" in as_records
    )


def test_a_property_matches_every_minor_and_patch_of_its_major() -> None:
    sql = _compiled("snowflake", "VARIANT")
    assert "product_1_0_0" in sql and "product_1_1_0" in sql
    assert "event_specification_1_0_2" in sql  # the selector's schema, any minor


def _entity_group(
    attribute: dict[str, object], vendor: str, name: str, path: str
) -> AttributeGroup:
    """A batch group of one attribute reading ``path`` of entity ``vendor/name`` (major 1)."""
    prop = {"type": "entity", "vendor": vendor, "name": name, "major_version": 1, "path": path}
    return AttributeGroup.parse(
        {
            "name": "one", "version": 1, "offline": True,
            "attribute_key": {"name": "domain_userid"},
            "attributes": [{**attribute, "property": prop}],
        }
    )  # fmt: skip


def test_what_a_dialect_cannot_express_is_a_definition_error() -> None:
    last = {"name": "last_item", "type": "string", "aggregation": "last"}
    group = _entity_group(last, "com.acme", "basket", "items[-1].sku")
    table = EventsTable.of(
        TableRef(None, "atomic", "events"),
        {**_ATOMIC, "contexts_com_acme_basket_1_0_0": "JSON"},
        "bigquery",
    )
    with pytest.raises(DefinitionError, match=r"negative index \[-1\] has no bigquery"):
        compile_group(group, table, dialect="bigquery", now_ms=0)
    duck = EventsTable.of(table.ref, dict(table.columns.types), "duckdb")
    assert "[#-1]" in compile_group(group, duck, dialect="duckdb", now_ms=0).sql
    with pytest.raises(DefinitionError, match="dialect: 'oracle'"):
        compile_group(group, duck, dialect="oracle", now_ms=0)  # type: ignore[arg-type]


def test_bigquery_record_fields_are_read_snake_cased_as_its_loader_writes_them() -> None:
    top = {"name": "session_index", "type": "int64", "aggregation": "max"}
    group = _entity_group(top, "com.snowplowanalytics.snowplow", "client_session", "sessionIndex")
    column = "contexts_com_snowplowanalytics_snowplow_client_session_1_0_1"
    for kind, path in (("ARRAY<STRUCT<session_index INT64>>", "$[0].session_index"),
                       ("JSON", "$[0].sessionIndex")):  # fmt: skip
        table = EventsTable.of(
            TableRef(None, "atomic", "events"), {**_ATOMIC, column: kind}, "bigquery"
        )
        assert f"'{path}'" in compile_group(group, table, dialect="bigquery", now_ms=0).sql, kind
