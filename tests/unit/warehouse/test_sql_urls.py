"""The sync's SQL for every dialect and the warehouse URL's redaction (pure)."""

from __future__ import annotations

import pytest
import sqlglot
from sqlglot import exp

from signals_stream.errors import ConfigurationError
from signals_stream.settings import load_settings
from signals_stream.warehouse import TableRef, Watermark, parse_warehouse_url, redact_url
from signals_stream.warehouse.sql import DIALECTS, changed_rows_sql, columns_sql

TABLE = TableRef("DB", "SCH", "CRM")
MARK = Watermark(1_780_000_000_123, "o'brien")  # 2026-05-28 20:26:40.123 UTC


def chunk(engine: str, after: Watermark | None = MARK, since: int | None = None) -> str:
    return changed_rows_sql(
        engine,  # type: ignore[arg-type]
        TABLE, id_column="CUSTOMER_ID", timestamp_column="UPDATED_AT", fields=["LTV", "TIER"],
        after=after, since_ms=since, limit=500,
    )  # fmt: skip


@pytest.mark.parametrize("engine", list(DIALECTS))
def test_the_chunk_query_parses_back_in_its_dialect(engine: str) -> None:
    tree = sqlglot.parse_one(chunk(engine), read=DIALECTS[engine])  # type: ignore[index]
    assert isinstance(tree, exp.Select)
    assert [c.alias_or_name for c in tree.expressions] == ["__id", "__ts", "LTV", "TIER"]
    table = tree.find(exp.Table)
    assert table is not None and (table.catalog, table.db, table.name) == ("DB", "SCH", "CRM")
    limit = tree.args["limit"]
    assert int(limit.expression.name) == 500
    order = [o.this.sql(dialect=DIALECTS[engine]) for o in tree.args["order"].expressions]  # type: ignore[index]
    assert order[0].strip('"`') == "UPDATED_AT" and "CUSTOMER_ID" in order[1]
    # The watermark: the instant in UTC with its zone, and the id quoted safely.
    text = tree.sql(dialect=DIALECTS[engine])  # type: ignore[index]
    assert "2026-05-28 20:26:40.123000+00:00" in text
    literals = {lit.this for lit in tree.find_all(exp.Literal) if lit.is_string}
    assert "o'brien" in literals


def test_quoting_by_dialect_and_the_first_run_bound() -> None:
    assert '"DB"."SCH"."CRM"' in chunk("snowflake")
    assert "`DB`.`SCH`.`CRM`" in chunk("bigquery")
    assert "CAST(`CUSTOMER_ID` AS STRING)" in chunk("bigquery")
    assert 'CAST("CUSTOMER_ID" AS VARCHAR)' in chunk("snowflake")
    first = chunk("postgres", after=None, since=0)
    assert ">= CAST('1970-01-01 00:00:00.000000+00:00' AS TIMESTAMPTZ)" in first
    assert " OR " not in first
    assert 'WHERE NOT "UPDATED_AT" IS NULL ORDER BY' in chunk("duckdb", after=None)


def test_columns_query_per_dialect() -> None:
    assert "information_schema.columns" in columns_sql("postgres", TABLE)
    assert "table_schema = 'SCH'" in columns_sql("snowflake", TABLE)
    assert "`SCH`.`INFORMATION_SCHEMA`.`COLUMNS`" in columns_sql("bigquery", TABLE)


def test_urls_are_redacted_and_checked() -> None:
    assert redact_url("postgresql://sync:s3cret@db:5432/wh") == "postgresql://sync:***@db:5432/wh"
    assert redact_url("snowflake://me:pw@acct/db?token=abc") == "snowflake://me:***@acct/db?***"
    assert redact_url("duckdb:///tmp/w.duckdb") == "duckdb:///tmp/w.duckdb"
    assert parse_warehouse_url("duckdb:///tmp/w.duckdb").path == "/tmp/w.duckdb"
    assert parse_warehouse_url("postgresql://u@h/wh").engine == "postgres"
    assert parse_warehouse_url("bigquery://my-project").path == ""
    with pytest.raises(ConfigurationError, match=r"u:\*\*\*@h"):
        parse_warehouse_url("mysql://u:pw@h/db")
    with pytest.raises(ConfigurationError, match="names a file"):
        parse_warehouse_url("duckdb://")


def test_a_bad_setting_never_prints_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNALS_WAREHOUSE_URL", "mysql://u:hunter2@h/db")
    with pytest.raises(ConfigurationError, match="SIGNALS_WAREHOUSE_URL") as caught:
        load_settings()
    assert "hunter2" not in str(caught.value)
    monkeypatch.setenv("SIGNALS_WAREHOUSE_URL", "postgresql://u:hunter2@h/db")
    settings = load_settings()
    assert "hunter2" not in repr(settings)
    assert settings.warehouse == "postgresql://u:hunter2@h/db"
