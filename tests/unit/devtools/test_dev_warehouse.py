"""The dev stack's example warehouse: one CRM row per shopper, written to a DuckDB file the
sync reads, and a warehouse group the registry accepts for it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from signals_stream.definitions import AttributeGroup
from signals_stream.devtools.dev_warehouse import EXAMPLE_GROUP, write_example_warehouse
from signals_stream.warehouse import TableRef, open_warehouse

NOW = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)


def test_the_example_table_matches_the_example_group(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    users = [f"duid-{n}" for n in range(9)]
    assert write_example_warehouse(path, users, NOW) == 9
    assert write_example_warehouse(path, users[:3], NOW) == 3  # replaced, not appended
    with duckdb.connect(str(path), read_only=True) as conn:
        rows = conn.execute(
            "SELECT domain_userid, orders, lifetime_value, loyalty_tier, preferred_payment "
            "FROM crm.customers ORDER BY domain_userid"
        ).fetchall()
    # Visitor n has n % 4 orders from the seed transactions (13, 13, 43, 18, ... EUR).
    assert rows == [
        ("duid-0", 0, 0.0, "bronze", None),
        ("duid-1", 1, 13.0, "bronze", "BNPL"),
        ("duid-2", 2, 43.0 + 18.0, "silver", "credit card"),
    ]
    group = AttributeGroup.parse(EXAMPLE_GROUP)
    assert group.kind == "external_batch"
    source = group.batch_source
    assert source is not None
    with open_warehouse(f"duckdb:///{path}") as wh:  # the default URL's file: catalog "warehouse"
        columns = wh.columns(TableRef(source.database, source.schema_, source.table))
    assert {f.name for f in group.fields or ()} | {"domain_userid", "updated_at"} == set(columns)
