"""The ecommerce seed on a real broker for the history tests: shifted so the newest event lands
two minutes ago, with record timestamps at the (shifted) collector time, except the events of
2022-10-25, which arrive late (stamped when produced): only their event time keeps them out of
a 30-day window."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from snowplow_signals import AtomicProperty, Attribute, Criteria, Criterion

from signals_stream.devtools.replay import shift_record
from tests.dbt_seeds import ECOMMERCE_SEED, seed_event_id, seed_rows, seed_tsv

__all__ = [
    "DAY_MS",
    "ECOM",
    "Expected",
    "LAST_PAGE",
    "LATE_DAY",
    "NEWEST_AGO_MS",
    "PRODUCT_X_VIEWS",
    "event_ms",
    "produce_seed",
    "shift_to_now",
]

NEWEST_AGO_MS = 2 * 60_000
ECOM = "com.snowplowanalytics.snowplow.ecommerce"
DAY_MS = 86_400_000
LATE_DAY = "2022-10-25"

# Two attributes both history tests compute (SDK objects): views of the productX page, and
# the last page.
PRODUCT_X_VIEWS = Attribute(
    name="product_x_views",
    type="int64",
    events=[],
    aggregation="counter",
    criteria=Criteria(all=[Criterion.like(AtomicProperty(name="page_url"), "%/productX")]),
)
LAST_PAGE = Attribute(
    name="last_page",
    type="string",
    events=[],
    aggregation="last",
    property=AtomicProperty(name="page_url"),
)


@dataclass
class Expected:
    """One user's values of ``test_history_group_test.GROUP``'s attributes, worked out from
    the CSV rows with plain Python."""

    events_seen: int = 0
    product_x_views: int = 0
    categories: set[str] = field(default_factory=set)
    last: tuple[int, str, str] | None = None  # (event time, event id, page_url)
    cart_max: float | None = None
    recent_events: int = 0
    last_seen_ms: int = 0

    def add(self, row: dict[str, str], t: int, now_ms: int) -> None:
        self.events_seen += 1
        self.last_seen_ms = max(self.last_seen_ms, t)
        url = row["page_url"]
        self.product_x_views += url.endswith("/productX")
        products = json.loads(row[f"contexts_{ECOM.replace('.', '_')}_product_1_0_0"] or "[]")
        if products and products[0].get("category") is not None:
            self.categories.add(products[0]["category"])
        if url:
            candidate = (t, seed_event_id(row["event_id"]), url)
            self.last = candidate if self.last is None else max(self.last, candidate)
        carts = json.loads(row[f"contexts_{ECOM.replace('.', '_')}_cart_1_0_0"] or "[]")
        if carts and carts[0].get("total_value") is not None:
            value = float(carts[0]["total_value"])
            self.cart_max = value if self.cart_max is None else max(self.cart_max, value)
        self.recent_events += t > now_ms - DAY_MS

    def values(self) -> dict[str, Any]:
        return {
            "events_seen": self.events_seen,
            "product_x_views": self.product_x_views,
            "categories": sorted(self.categories),
            "last_page": None if self.last is None else self.last[2],
            "cart_max": self.cart_max,
            "recent_events": self.recent_events,
        }


def event_ms(text: str) -> int:
    """A seed timestamp cell as epoch milliseconds."""
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def shift_to_now() -> tuple[int, int]:
    """``(delta, now)``: the shift that puts the seed's newest event two minutes before now."""
    newest = max(event_ms(r["derived_tstamp"]) for r in seed_rows(ECOMMERCE_SEED))
    now = time.time_ns() // 1_000_000
    return now - NEWEST_AGO_MS - newest, now


def produce_seed(bootstrap: str, topic: str, delta_ms: int, lines: slice = slice(None)) -> None:
    """Every seed line (or those of ``lines``), shifted by ``delta_ms``, to ``topic``."""

    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=[bootstrap], enable_idempotence=False)
        await producer.start()
        try:
            rows = zip(seed_rows(ECOMMERCE_SEED), seed_tsv(ECOMMERCE_SEED), strict=True)
            for row, line in list(rows)[lines]:
                late = row["derived_tstamp"].startswith(LATE_DAY)
                stamp = None if late else event_ms(row["collector_tstamp"]) + delta_ms
                value = shift_record(line.encode(), delta_ms)
                await producer.send(topic, value, timestamp_ms=stamp)
            await producer.flush()
        finally:
            await producer.stop()

    asyncio.run(produce())
