"""The few SQL snippets that differ between warehouses, as sqlglot expressions. Pure.

Everything portable (``CASE``, ``CAST``, arithmetic, ``COUNT``/``SUM``/``MIN``...) is built
with sqlglot's own expression nodes and transpiled by it. What sqlglot cannot translate (JSON
access and type tests, epoch milliseconds, ISO weekdays, ordered ``ARRAY_AGG`` with a filter,
JSON object aggregation) is written once per dialect as a small template in that dialect's
own SQL, parsed by sqlglot and filled with argument expressions (placeholders ``__0``,
``__1``...). The result is always a sqlglot tree, so the whole query is rendered by one
``.sql(dialect=...)``.

JSON model: every self-describing column is read as a JSON document (DuckDB ``JSON``,
PostgreSQL ``JSONB``, Snowflake ``VARIANT``, BigQuery ``JSON``; a text column is parsed, and a
BigQuery ``REPEATED RECORD``/``STRUCT`` column goes through ``TO_JSON``), so one set of
operations serves every layout.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Literal

import sqlglot
from sqlglot import exp

from signals_stream.definitions.paths import PathStep
from signals_stream.errors import DefinitionError

__all__ = ["DIALECT_NAMES", "DialectName", "SqlDialect"]

DialectName = Literal["duckdb", "postgres", "snowflake", "bigquery"]
DIALECT_NAMES: tuple[DialectName, ...] = ("duckdb", "postgres", "snowflake", "bigquery")

_PG_NUMBER = r"^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\s*$"
_PG_TIMESTAMP = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?"
    r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)?)?$"
)

# name -> dialect -> template. ``__N`` is the N-th argument.
_TEMPLATES: dict[str, dict[DialectName, str]] = {
    "json_parse": {
        "duckdb": "CAST(__0 AS JSON)",
        "postgres": "CAST(__0 AS JSONB)",
        "snowflake": "TRY_PARSE_JSON(__0)",
        "bigquery": "SAFE.PARSE_JSON(__0)",
    },
    "json_is_string": {
        "duckdb": "json_type(__0) = 'VARCHAR'",
        "postgres": "jsonb_typeof(__0) = 'string'",
        "snowflake": "TYPEOF(__0) = 'VARCHAR'",
        "bigquery": "JSON_TYPE(__0) = 'string'",
    },
    "json_is_number": {
        "duckdb": "json_type(__0) IN ('BIGINT', 'UBIGINT', 'DOUBLE', 'HUGEINT')",
        "postgres": "jsonb_typeof(__0) = 'number'",
        "snowflake": "TYPEOF(__0) IN ('INTEGER', 'DECIMAL', 'DOUBLE')",
        "bigquery": "JSON_TYPE(__0) = 'number'",
    },
    "json_is_bool": {
        "duckdb": "json_type(__0) = 'BOOLEAN'",
        "postgres": "jsonb_typeof(__0) = 'boolean'",
        "snowflake": "TYPEOF(__0) = 'BOOLEAN'",
        "bigquery": "JSON_TYPE(__0) = 'boolean'",
    },
    "json_is_null": {
        "duckdb": "json_type(__0) = 'NULL'",
        "postgres": "jsonb_typeof(__0) = 'null'",
        "snowflake": "IS_NULL_VALUE(__0)",
        "bigquery": "JSON_TYPE(__0) = 'null'",
    },
    "json_scalar_text": {
        "duckdb": "json_extract_string(__0, '$')",
        "postgres": "__0 #>> '{}'",
        "snowflake": "AS_VARCHAR(__0)",
        "bigquery": "JSON_VALUE(__0)",
    },
    "json_dump": {
        "duckdb": "CAST(__0 AS VARCHAR)",
        "postgres": "CAST(__0 AS TEXT)",
        "snowflake": "TO_JSON(__0)",
        "bigquery": "TO_JSON_STRING(__0)",
    },
    "json_array_length": {
        "duckdb": "COALESCE(json_array_length(__0), 0)",
        "postgres": "CASE WHEN jsonb_typeof(__0) = 'array' THEN jsonb_array_length(__0) ELSE 0 END",
        "snowflake": "COALESCE(ARRAY_SIZE(__0), 0)",
        "bigquery": "COALESCE(ARRAY_LENGTH(JSON_QUERY_ARRAY(__0)), 0)",
    },
    "json_any_id": {  # does the entity array hold an element whose "id" is __1
        "duckdb": "list_contains(json_extract_string(__0, '$[*].id'), __1)",
        "postgres": "__0 @> jsonb_build_array(jsonb_build_object('id', __1))",
        "snowflake": (
            "EXISTS(SELECT 1 FROM TABLE(FLATTEN(__0)) AS f WHERE f.value:id::STRING = __1)"
        ),
        "bigquery": (
            "EXISTS(SELECT 1 FROM UNNEST(JSON_QUERY_ARRAY(__0)) AS e "
            "WHERE JSON_VALUE(e, '$.id') = __1)"
        ),
    },
    "epoch_ms": {
        "duckdb": "epoch_ms(__0)",
        "postgres": "CAST(FLOOR(EXTRACT(EPOCH FROM __0) * 1000) AS BIGINT)",
        "snowflake": "DATE_PART(EPOCH_MILLISECOND, __0)",
        "bigquery": "UNIX_MILLIS(__0)",
    },
    "safe_double": {
        "duckdb": "TRY_CAST(__0 AS DOUBLE)",
        "postgres": f"CASE WHEN __0 ~ '{_PG_NUMBER}' THEN CAST(__0 AS DOUBLE PRECISION) END",
        "snowflake": "TRY_TO_DOUBLE(__0)",
        "bigquery": "SAFE_CAST(__0 AS FLOAT64)",
    },
    "safe_timestamp": {
        "duckdb": "TRY_CAST(__0 AS TIMESTAMPTZ)",
        "postgres": f"CASE WHEN __0 ~ '{_PG_TIMESTAMP}' THEN CAST(__0 AS TIMESTAMPTZ) END",
        "snowflake": "TRY_TO_TIMESTAMP_TZ(__0)",
        "bigquery": "SAFE_CAST(__0 AS TIMESTAMP)",
    },
    "iso_text": {  # the stream's iso_utc(): 2024-03-15T09:05:29.634000Z
        "duckdb": "strftime(__0, '%Y-%m-%dT%H:%M:%S.%fZ')",
        "postgres": "to_char(__0 AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
        "snowflake": (
            "TO_VARCHAR(CONVERT_TIMEZONE('UTC', __0), 'YYYY-MM-DD') || 'T' || "
            "TO_VARCHAR(CONVERT_TIMEZONE('UTC', __0), 'HH24:MI:SS.FF6') || 'Z'"
        ),
        "bigquery": "FORMAT_TIMESTAMP('%Y-%m-%dT%H:%M:%E6SZ', __0, 'UTC')",
    },
    "iso_dow": {
        "duckdb": "isodow(__0)",
        "postgres": "CAST(EXTRACT(ISODOW FROM __0) AS BIGINT)",
        "snowflake": "DAYOFWEEKISO(__0)",
        "bigquery": "MOD(EXTRACT(DAYOFWEEK FROM __0) + 5, 7) + 1",
    },
    "hour": {
        "duckdb": "hour(__0)",
        "postgres": "CAST(EXTRACT(HOUR FROM __0) AS BIGINT)",
        "snowflake": "HOUR(__0)",
        "bigquery": "EXTRACT(HOUR FROM __0)",
    },
    "month": {
        "duckdb": "month(__0)",
        "postgres": "CAST(EXTRACT(MONTH FROM __0) AS BIGINT)",
        "snowflake": "MONTH(__0)",
        "bigquery": "EXTRACT(MONTH FROM __0)",
    },
    "day_text": {
        "duckdb": "CAST(CAST(__0 AS DATE) AS VARCHAR)",
        "postgres": "CAST(CAST(__0 AS DATE) AS TEXT)",
        "snowflake": "TO_VARCHAR(CAST(__0 AS DATE))",
        "bigquery": "CAST(DATE(__0) AS STRING)",
    },
    "week_text": {
        "duckdb": "CAST(CAST(date_trunc('week', __0) AS DATE) AS VARCHAR)",
        "postgres": "CAST(CAST(date_trunc('week', __0) AS DATE) AS TEXT)",
        "snowflake": "TO_VARCHAR(DATEADD(DAY, 1 - DAYOFWEEKISO(__0), CAST(__0 AS DATE)))",
        "bigquery": "CAST(DATE_TRUNC(DATE(__0), ISOWEEK) AS STRING)",
    },
    "month_text": {
        "duckdb": "CAST(CAST(date_trunc('month', __0) AS DATE) AS VARCHAR)",
        "postgres": "CAST(CAST(date_trunc('month', __0) AS DATE) AS TEXT)",
        "snowflake": "TO_VARCHAR(CAST(DATE_TRUNC('MONTH', __0) AS DATE))",
        "bigquery": "CAST(DATE_TRUNC(DATE(__0), MONTH) AS STRING)",
    },
    # The value __0 of the row with the smallest (__1, __2) among rows where __3 holds and
    # __0 is not null (`first`); `pick_last` the largest.
    "pick_first": {
        "duckdb": "(ARRAY_AGG(__0 ORDER BY __1, __2) FILTER (WHERE __3 AND __0 IS NOT NULL))[1]",
        "postgres": (
            '(ARRAY_AGG(__0 ORDER BY __1, __2 COLLATE "C") '
            "FILTER (WHERE __3 AND __0 IS NOT NULL))[1]"
        ),
        "snowflake": (
            "GET(ARRAY_AGG(CASE WHEN __3 THEN __0 END) WITHIN GROUP (ORDER BY __1, __2), 0)"
        ),
        "bigquery": (
            "ARRAY_AGG(CASE WHEN __3 THEN __0 END IGNORE NULLS ORDER BY __1, __2 LIMIT 1)"
            "[SAFE_OFFSET(0)]"
        ),
    },
    "pick_last": {
        "duckdb": (
            "(ARRAY_AGG(__0 ORDER BY __1 DESC, __2 DESC) FILTER (WHERE __3 AND __0 IS NOT NULL))[1]"
        ),
        "postgres": (
            '(ARRAY_AGG(__0 ORDER BY __1 DESC, __2 COLLATE "C" DESC) '
            "FILTER (WHERE __3 AND __0 IS NOT NULL))[1]"
        ),
        "snowflake": (
            "GET(ARRAY_AGG(CASE WHEN __3 THEN __0 END) WITHIN GROUP "
            "(ORDER BY __1 DESC, __2 DESC), 0)"
        ),
        "bigquery": (
            "ARRAY_AGG(CASE WHEN __3 THEN __0 END IGNORE NULLS ORDER BY __1 DESC, __2 DESC "
            "LIMIT 1)[SAFE_OFFSET(0)]"
        ),
    },
    # The values __0 ordered by (__1, __2): unique_list's oldest-to-newest order.
    "ordered_list": {
        "duckdb": "ARRAY_AGG(__0 ORDER BY __1, __2)",
        "postgres": 'ARRAY_AGG(__0 ORDER BY __1, __2 COLLATE "C")',
        "snowflake": "ARRAY_AGG(__0) WITHIN GROUP (ORDER BY __1, __2)",
        "bigquery": "ARRAY_AGG(__0 ORDER BY __1, __2)",
    },
    "object_agg": {
        "duckdb": "json_group_object(__0, __1)",
        "postgres": "jsonb_object_agg(__0, __1)",
        "snowflake": "OBJECT_AGG(__0, TO_VARIANT(__1))",
        "bigquery": "JSON_OBJECT(ARRAY_AGG(__0), ARRAY_AGG(__1))",
    },
    "md5_hex": {  # lowercase hex MD5 of a text (dataset sampling, ``docs/semantics.md``)
        "duckdb": "md5(__0)",
        "postgres": "md5(__0)",
        "snowflake": "MD5(__0)",
        "bigquery": "TO_HEX(MD5(__0))",
    },
    "empty_object": {
        "duckdb": "CAST('{}' AS JSON)",
        "postgres": "CAST('{}' AS JSONB)",
        "snowflake": "OBJECT_CONSTRUCT()",
        "bigquery": "JSON '{}'",
    },
    "text_order": {  # text in code-point order, as Python compares strings
        "duckdb": "__0",
        "postgres": '__0 COLLATE "C"',
        "snowflake": "COLLATE(__0, '')",
        "bigquery": "__0",
    },
}

_PLACEHOLDER = re.compile(r"^__(\d+)$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# What each dialect calls a JSON document and a text column, for information_schema types.
_JSON_TYPES = ("json", "jsonb", "variant", "object", "array")
_STRUCT_TYPES = ("struct", "record", "array<")


@cache
def _parsed(name: str, dialect: DialectName) -> exp.Expr:
    return sqlglot.parse_one(_TEMPLATES[name][dialect], read=dialect)


class SqlDialect:
    """The dialect-specific pieces of the batch SQL for one warehouse engine."""

    def __init__(self, name: DialectName) -> None:
        if name not in DIALECT_NAMES:
            raise DefinitionError(f"dialect: {name!r} is not one of {', '.join(DIALECT_NAMES)}")
        self.name: DialectName = name
        # Expressions computed once per event and then referred to by name (JSON lookups
        # that several attributes share): SQL text -> (column name, expression).
        self.hoisted: dict[str, tuple[str, exp.Expr]] = {}

    def hoist(self, node: exp.Expr) -> exp.Expr:
        """A column standing for ``node``, computed once in the query's first CTE."""
        text = node.sql(dialect=self.name)
        if text not in self.hoisted:
            self.hoisted[text] = (f"__j{len(self.hoisted)}", node)
        return exp.column(self.hoisted[text][0], quoted=True)

    def call(self, template: str, *args: exp.Expr) -> exp.Expr:
        """The template ``template`` of this dialect with ``__N`` replaced by ``args[N]``."""

        def fill(node: exp.Expr) -> exp.Expr:
            if isinstance(node, exp.Column) and not node.table:
                match = _PLACEHOLDER.match(node.name)
                if match:
                    return args[int(match.group(1))].copy()
            return node

        return _parsed(template, self.name).copy().transform(fill)

    def json_document(self, column: exp.Expr, column_type: str) -> exp.Expr:
        """A self-describing column as a JSON document, whatever its warehouse type."""
        kind = column_type.lower()
        if self.name == "bigquery" and kind.startswith(_STRUCT_TYPES):
            return exp.Anonymous(this="TO_JSON", expressions=[column])
        if kind.startswith(_JSON_TYPES):
            return column
        return self.call("json_parse", column)

    def json_path(self, document: exp.Expr, steps: tuple[PathStep, ...]) -> exp.Expr:
        """The JSON value at ``steps`` in ``document`` (SQL NULL when missing)."""
        if self.name == "postgres":
            parts = [exp.Literal.string(str(step)) for step in steps]
            return exp.Anonymous(this="jsonb_extract_path", expressions=[document, *parts])
        if self.name == "snowflake":
            text = ""
            for step in steps:
                if isinstance(step, int):
                    self._no_negative(step)
                    text += f"[{step}]"
                else:
                    key = step if _IDENTIFIER.match(step) else '"' + step.replace('"', '""') + '"'
                    text += ("." if text else "") + key
            return exp.Anonymous(this="GET_PATH", expressions=[document, exp.Literal.string(text)])
        text = "$"
        for step in steps:
            if isinstance(step, int):
                if step < 0:
                    self._no_negative(step)
                    text += f"[#{step}]"  # DuckDB counts from the end this way
                else:
                    text += f"[{step}]"
            else:
                text += "." + (step if _IDENTIFIER.match(step) else '"' + step + '"')
        name = "json_extract" if self.name == "duckdb" else "JSON_QUERY"
        return exp.Anonymous(this=name, expressions=[document, exp.Literal.string(text)])

    def _no_negative(self, step: int) -> None:
        if self.name != "duckdb" and step < 0:
            raise DefinitionError(
                f"property.path: negative index [{step}] has no {self.name} translation"
            )
