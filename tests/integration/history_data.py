"""The ecommerce seed on a real broker for the history tests: shifted so the newest event lands
two minutes ago, with record timestamps at the (shifted) collector time, except the events of
2022-10-25, which arrive late (stamped when produced): only their event time keeps them out of
a 30-day window."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

from aiokafka import AIOKafkaProducer
from snowplow_signals import AtomicProperty, Attribute, Criteria, Criterion

from signals_stream.devtools.replay import shift_record
from tests.dbt_seeds import ECOMMERCE_SEED, seed_rows, seed_tsv

__all__ = [
    "LAST_PAGE",
    "LATE_DAY",
    "NEWEST_AGO_MS",
    "PRODUCT_X_VIEWS",
    "event_ms",
    "produce_seed",
    "shift_to_now",
]

NEWEST_AGO_MS = 2 * 60_000
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


def event_ms(text: str) -> int:
    """A seed timestamp cell as epoch milliseconds."""
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def shift_to_now() -> tuple[int, int]:
    """``(delta, now)``: the shift that puts the seed's newest event two minutes before now."""
    newest = max(event_ms(r["derived_tstamp"]) for r in seed_rows(ECOMMERCE_SEED))
    now = time.time_ns() // 1_000_000
    return now - NEWEST_AGO_MS - newest, now


def produce_seed(bootstrap: str, topic: str, delta_ms: int) -> None:
    """Every seed line, shifted by ``delta_ms``, to ``topic``."""

    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=[bootstrap], enable_idempotence=False)
        await producer.start()
        try:
            rows = zip(seed_rows(ECOMMERCE_SEED), seed_tsv(ECOMMERCE_SEED), strict=True)
            for row, line in rows:
                late = row["derived_tstamp"].startswith(LATE_DAY)
                stamp = None if late else event_ms(row["collector_tstamp"]) + delta_ms
                value = shift_record(line.encode(), delta_ms)
                await producer.send(topic, value, timestamp_ms=stamp)
            await producer.flush()
        finally:
            await producer.stop()

    asyncio.run(produce())
