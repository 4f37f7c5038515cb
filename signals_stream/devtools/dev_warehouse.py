"""The example warehouse of ``signals-stream dev``: a DuckDB file with a CRM-like table for
the shoppers the dev stack's generator simulates, and the warehouse group that syncs it, so
a newcomer reads warehouse and stream attributes of one user side by side.

The values are examples, made deterministically per visitor from the revenues and payment
methods of the transactions in Snowplow's dbt-snowplow-ecommerce test seeds
(``com_snowplowanalytics_snowplow_ecommerce_transaction_1.csv``, EUR).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

__all__ = ["EXAMPLE_GROUP", "write_example_warehouse"]

# (revenue, payment method) of the seed transactions, one per transaction id in file order,
# without the two test outliers (1234567.89 EUR, 231231 USD).
_SEED_TRANSACTIONS: tuple[tuple[float, str], ...] = (
    (13.0, "BNPL"),
    (13.0, "BNPL"),
    (43.0, "credit card"),
    (18.0, "credit card"),
    (26.0, "bank transfer"),
    (26.0, "bank transfer"),
    (26.0, "bank transfer"),
    (18.0, "bank transfer"),
    (18.0, "bank transfer"),
    (18.0, "bank transfer"),
    (18.0, "bank transfer"),
    (43.0, "credit card"),
    (43.0, "credit card"),
    (26.0, "credit card"),
    (26.0, "credit card"),
    (26.0, "credit card"),
    (26.0, "credit card"),
    (26.0, "credit card"),
    (18.0, "credit card"),
    (18.0, "credit card"),
    (43.0, "credit card"),
    (26.0, "BNPL"),
    (26.0, "bank transfer"),
    (13.0, "bank transfer"),
    (13.0, "BNPL"),
    (18.0, "bank transfer"),
)
_TIERS = ((100.0, "gold"), (50.0, "silver"), (0.0, "bronze"))

# The external batch group the dev stack publishes: the SDK's body for the table below.
EXAMPLE_GROUP: dict[str, Any] = {
    "name": "customer_profile",
    "version": 1,
    "owner": "dev@example.com",
    "description": "CRM fields from the example warehouse (warehouse.duckdb, crm.customers).",
    "attribute_key": {"name": "domain_userid"},
    "offline": True,
    "fields": [
        {"name": "lifetime_value", "type": "double"},
        {"name": "orders", "type": "int32"},
        {"name": "loyalty_tier", "type": "string"},
        {"name": "preferred_payment", "type": "string"},
    ],
    "batch_source": {
        "name": "crm_customers",
        "database": "warehouse",  # the file's stem: warehouse.duckdb
        "schema": "crm",
        "table": "customers",
        "timestamp_field": "updated_at",
    },
    "refresh_rate": "PT5M",
}


def example_rows(user_ids: list[str], now: dt.datetime) -> list[tuple[Any, ...]]:
    """One CRM row per user: (id, updated_at, lifetime value, orders, tier, payment)."""
    rows = []
    for n, uid in enumerate(user_ids):
        orders = n % 4  # a quarter of the shoppers never ordered
        bought = [_SEED_TRANSACTIONS[(n + k) % len(_SEED_TRANSACTIONS)] for k in range(orders)]
        value = round(sum(revenue for revenue, _ in bought), 2)
        tier = next(name for bound, name in _TIERS if value >= bound)
        payment = bought[0][1] if bought else None
        rows.append((uid, now - dt.timedelta(minutes=n % 60), value, orders, tier, payment))
    return rows


def write_example_warehouse(path: Path, user_ids: list[str], now: dt.datetime) -> int:
    """(Re)create ``crm.customers`` in the DuckDB file ``path`` for ``user_ids``; row count."""
    import duckdb  # the edge

    rows = example_rows(user_ids, now)
    with duckdb.connect(str(path)) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        conn.execute("CREATE SCHEMA IF NOT EXISTS crm")
        conn.execute(
            "CREATE OR REPLACE TABLE crm.customers (domain_userid TEXT, updated_at TIMESTAMP, "
            "lifetime_value DOUBLE, orders INTEGER, loyalty_tier TEXT, preferred_payment TEXT)"
        )
        conn.executemany(
            "INSERT INTO crm.customers VALUES (?, ?, ?, ?, ?, ?)",
            [(r[0], r[1].replace(tzinfo=None), *r[2:]) for r in rows],
        )
    return len(rows)
