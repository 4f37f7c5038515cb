"""The reference group's batch SQL over the seed CSV loaded as is (``read_csv_auto``), against
values worked out in plain Python from the CSV's own rows.

The warehouse seed stringifies typed fields (``"price": "12.0"``), so this also pins the
stream's typing rules in SQL: ``sum`` skips strings, and a string compared with a string
comparand compares as text (``"12.0" >= "20"`` is false, ``"25.0" >= "20"`` true).
"""

from __future__ import annotations

import csv
import json
import time
from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

import duckdb
import pytest

from signals_stream.batch.compile import DEFAULT_EVENTS_TABLE, EventsTable, compile_group
from tests.batch_events import column_types, load_raw_duckdb
from tests.datafiles import DATA_DIR
from tests.dbt_seeds import ECOMMERCE_SEED
from tests.unit.batch.ecommerce_group import batch_group

ACTION = "unstruct_event_com_snowplowanalytics_snowplow_ecommerce_snowplow_ecommerce_action_1_0_0"
PRODUCT = "contexts_com_snowplowanalytics_snowplow_ecommerce_product_1_0_0"


def _csv_rows() -> list[dict[str, str]]:
    with (DATA_DIR / ECOMMERCE_SEED).open(newline="", encoding="utf-8") as handle:
        return [row for row in csv.DictReader(handle) if row["domain_userid"]]


def _json(text: str) -> Any:
    return json.loads(text) if text else None


def _action(row: dict[str, str]) -> str | None:
    data = _json(row[ACTION])
    return data.get("type") if isinstance(data, dict) else None


def _first_product(row: dict[str, str]) -> dict[str, Any] | None:
    products = _json(row[PRODUCT]) or []
    return products[0] if products else None


def _when(row: dict[str, str]) -> datetime:
    return datetime.fromisoformat(row["derived_tstamp"])


def expected_by_hand() -> dict[str, dict[str, Any]]:
    """A subset of the group's attributes, from the CSV rows with no engine code."""
    users: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in _csv_rows():
        users[row["domain_userid"]].append(row)
    out: dict[str, dict[str, Any]] = {}
    for user, rows in users.items():
        rows.sort(key=lambda r: (_when(r), r["event_id"]))
        actions = Counter(a for a in map(_action, rows) if a is not None)
        seen: dict[str, datetime] = {}
        for row in rows:
            product = _first_product(row)
            if product and product.get("category") is not None:
                seen[product["category"]] = _when(row)  # rows are in time order
        prices = [p.get("price") for p in map(_first_product, rows) if p]
        hours = Counter(_when(r).hour for r in rows)
        latitudes = [float(r["geo_latitude"]) for r in rows if r["geo_latitude"]]
        out[user] = {
            "events": len(rows),
            "product_views": actions["product_view"],
            "top_action": min(actions, key=lambda a: (-actions[a], a)) if actions else None,
            "categories": sorted(seen, key=lambda c: (seen[c], c)),
            "last_url": next((r["page_url"] for r in reversed(rows) if r["page_url"]), None),
            "price_sum": 0.0,  # every price is a string in this CSV: sum skips strings
            "pricey_seen": sum(1 for p in prices if isinstance(p, str) and p >= "20"),
            "busiest_hour": min(hours, key=lambda h: (-hours[h], h)),
            "latitude_mean": sum(latitudes) / len(latitudes) if latitudes else None,
            "active_days": sorted(
                {r["derived_tstamp"][:10] for r in rows},
                key=lambda d: max((_when(r), d) for r in rows if r["derived_tstamp"][:10] == d),
            ),
        }
    return out


def test_batch_sql_over_the_csv_as_is_equals_values_worked_out_by_hand() -> None:
    con = duckdb.connect()
    load_raw_duckdb(con)
    table = EventsTable.of(DEFAULT_EVENTS_TABLE, column_types(con), "duckdb")
    query = compile_group(batch_group(), table, dialect="duckdb", now_ms=int(time.time() * 1000))
    cursor = con.execute(query.sql)
    names = [d[0] for d in cursor.description]
    got = {row[0]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}
    expected = expected_by_hand()
    assert set(got) == set(expected)
    assert len(expected) == 59  # the seed's README: 59 distinct domain_userid
    for user, values in expected.items():
        for name, value in values.items():
            if isinstance(value, float):
                assert got[user][name] == pytest.approx(value, rel=1e-12), (user, name)
            else:
                assert got[user][name] == value, (user, name)
    assert sum(v["pricey_seen"] for v in expected.values()) > 0  # the string order matters
