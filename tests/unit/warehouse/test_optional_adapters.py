"""The Snowflake and BigQuery adapters without a network: their official connectors are
replaced by stand-in modules whose DB-API connection is a real DuckDB database (the SQL the
adapter sends, in its engine's dialect, is translated to DuckDB's by sqlglot on the way in).
What runs is the adapter's own code: the URL as connector arguments, the session in UTC, the
queries, paging, value conversion and errors, through the same ``Warehouse`` interface and the
same rows as the DuckDB and PostgreSQL tests (``test_adapters``). Without the extra installed
the error names it."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from signals_stream.errors import ConfigurationError
from signals_stream.warehouse import TableRef, WarehouseError, Watermark, open_warehouse
from tests.unit.warehouse.test_adapters import ROWS, duckdb_warehouse, expected, ms, read_all


class _DuckCursor:
    """A DB-API cursor over DuckDB taking SQL of another dialect."""

    def __init__(self, conn: duckdb.DuckDBPyConnection, dialect: str, log: list[str]) -> None:
        self._conn, self._dialect, self._log, self._rows = conn, dialect, log, []

    def execute(self, sql: str) -> None:
        self._log.append(sql)
        tree = sqlglot.parse_one(sql, read=self._dialect)
        for table in tree.find_all(exp.Table):  # [catalog.]information_schema.columns
            if "information_schema" in (table.db.lower(), table.name.lower()[:18]):
                table.set("catalog", None)
                table.set("db", exp.to_identifier("information_schema"))
                table.set("this", exp.to_identifier("columns"))
        self._rows = self._conn.execute(tree.sql(dialect="duckdb")).fetchall()

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._rows

    def close(self) -> None:
        pass


class _DuckConnection:
    def __init__(self, path: str, dialect: str) -> None:
        self.conn = duckdb.connect(path, read_only=True)
        self.conn.execute("SET TimeZone = 'UTC'")
        self.dialect, self.log, self.closed = dialect, [], False

    def cursor(self) -> _DuckCursor:
        return _DuckCursor(self.conn, self.dialect, self.log)

    def close(self) -> None:
        self.closed = True
        self.conn.close()


def _install(monkeypatch: pytest.MonkeyPatch, modules: dict[str, types.ModuleType]) -> None:
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)


@pytest.fixture
def warehouse_file(tmp_path: Path) -> str:
    url, insert = duckdb_warehouse(tmp_path)
    insert(ROWS)
    return url.removeprefix("duckdb:///")


def test_snowflake_adapter(monkeypatch: pytest.MonkeyPatch, warehouse_file: str) -> None:
    calls: list[dict[str, Any]] = []
    connections: list[_DuckConnection] = []
    connector = types.ModuleType("snowflake.connector")

    def connect(**kwargs: Any) -> _DuckConnection:
        calls.append(kwargs)
        connections.append(_DuckConnection(warehouse_file, "snowflake"))
        return connections[-1]

    connector.connect = connect  # type: ignore[attr-defined]
    connector.Error = duckdb.Error  # type: ignore[attr-defined]
    _install(monkeypatch, {"snowflake": types.ModuleType("snowflake"),
                           "snowflake.connector": connector})  # fmt: skip
    url = "snowflake://svc:p%40ss@xy12345.eu-west-1/wh?warehouse=COMPUTE_WH&role=SYNC"
    with open_warehouse(url) as wh:
        assert wh.engine == "snowflake"
        chunks = read_all(wh, "wh", None, chunk=2)
        later = read_all(wh, "wh", Watermark(ms(ROWS[3][1]), "c4"), chunk=100)
        with pytest.raises(WarehouseError, match="Snowflake: .*nothing"):
            wh._query('SELECT * FROM "wh"."crm"."nothing"')
    assert calls == [{
        "account": "xy12345.eu-west-1", "user": "svc", "password": "p@ss", "database": "wh",
        "warehouse": "COMPUTE_WH", "role": "SYNC", "session_parameters": {"TIMEZONE": "UTC"},
    }]  # fmt: skip
    assert [len(c) for c in chunks] == [2, 2, 1]
    assert [r for c in chunks for r in c] == expected(ROWS)
    assert [r for c in later for r in c] == expected([ROWS[4]])
    assert connections[0].closed
    # What reached the connection was Snowflake SQL (its quoting), as sql.py builds it.
    assert any('FROM "wh"."crm"."customers"' in sql for sql in connections[0].log)


def test_bigquery_adapter(monkeypatch: pytest.MonkeyPatch, warehouse_file: str) -> None:
    clients: list[dict[str, Any]] = []
    connections: list[_DuckConnection] = []
    bigquery = types.ModuleType("google.cloud.bigquery")
    dbapi = types.ModuleType("google.cloud.bigquery.dbapi")

    class Client:
        def __init__(self, **kwargs: Any) -> None:
            clients.append(kwargs)

    def connect(client: Client) -> _DuckConnection:
        assert isinstance(client, Client)
        connections.append(_DuckConnection(warehouse_file, "bigquery"))
        return connections[-1]

    bigquery.Client = Client  # type: ignore[attr-defined]
    dbapi.connect = connect  # type: ignore[attr-defined]
    dbapi.Error = duckdb.Error  # type: ignore[attr-defined]
    _install(monkeypatch, {"google": types.ModuleType("google"),
                           "google.cloud": types.ModuleType("google.cloud"),
                           "google.cloud.bigquery": bigquery,
                           "google.cloud.bigquery.dbapi": dbapi})  # fmt: skip
    with open_warehouse("bigquery://my-project?location=EU") as wh:
        assert wh.engine == "bigquery"
        assert set(wh.columns(TableRef("wh", "crm", "customers"))) == {
            "id", "updated_at", "ltv", "tier",
        }  # fmt: skip
        chunks = read_all(wh, "wh", None, chunk=3)
        with pytest.raises(WarehouseError, match="has no column score"):
            list(wh.changed_rows(
                TableRef("wh", "crm", "customers"), id_column="id", timestamp_column="updated_at",
                fields=["score"], after=None, since_ms=None, chunk=10,
            ))  # fmt: skip
    assert clients == [{"project": "my-project", "location": "EU"}]
    assert [len(c) for c in chunks] == [3, 2]
    assert [r for c in chunks for r in c] == expected(ROWS)
    assert any("FROM `wh`.`crm`.`customers`" in sql for sql in connections[0].log)


@pytest.mark.parametrize(
    ("url", "extra"),
    [("snowflake://u:pw@acct/db", "snowflake"), ("bigquery://project", "bigquery")],
)
def test_without_the_extra_the_error_names_it(
    monkeypatch: pytest.MonkeyPatch, url: str, extra: str
) -> None:
    for name in ("snowflake", "snowflake.connector", "google.cloud.bigquery"):
        monkeypatch.setitem(sys.modules, name, None)  # type: ignore[arg-type]  # import fails
    with pytest.raises(ConfigurationError, match=rf"pip install 'signals-stream\[{extra}\]'"):
        open_warehouse(url)
