"""Backfill from the warehouse, on the real broker with DuckDB: the input log only ever received
the later part of the ecommerce seed (each partition from another event on, so the log's
start is past ``backfill_since_tstamp`` and differs per partition), the warehouse holds every
event. A group published late with a backfill from before the log's start ends, for every
entity, with the values of the same group that a second app had live from the start over a
topic holding every event, and with the values worked out from the CSV in plain Python.

Seed events are sorted by collector time and dealt to the 4 input partitions round robin,
each record stamped at its (shifted) collector time, as a collector writes them. Partition
``p`` of the late topic holds its events from index ``LOG_STARTS[p]`` on, so the events
between the first and the last start are in both the log and the warehouse (the overlap band
the cut must not count twice). Events past ``LIVE_FROM`` are produced after the publication
(the live road); the rest before it (the log backfill's road).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pytest
from aiokafka import AIOKafkaProducer
from snowplow_signals import (
    Attribute,
    EntityProperty,
    SignalsSandbox,
    StreamAttributeGroup,
    domain_userid,
)

from signals_stream.devtools.broker import LocalBroker
from signals_stream.devtools.replay import shift_record
from tests.batch_events import load_duckdb, typed_csv
from tests.dbt_seeds import ECOMMERCE_SEED, seed_event_id, seed_rows, seed_tsv
from tests.integration.history_data import ECOM, LAST_PAGE, PRODUCT_X_VIEWS, event_ms, shift_to_now
from tests.integration.workers import API_TOKEN, StreamApp, Worker, stream_app

pytestmark = pytest.mark.integration

PARTITIONS = 4
LOG_STARTS = (200, 260, 330, 390)  # per input partition: the first seed index the log holds
LIVE_FROM = 620  # seed indexes from here are produced after the publication
T = TypeVar("T")
CART = EntityProperty(vendor=ECOM, name="cart", major_version=1, path="total_value")


def _cart(name: str, aggregation: str) -> Attribute:
    return Attribute(name=name, type="double", events=[], aggregation=aggregation, property=CART)


def _group(name: str, attributes: list[Attribute]) -> StreamAttributeGroup:
    return StreamAttributeGroup(
        name=name, version=1, attribute_key=domain_userid, owner="whbackfill@example.com",
        attributes=attributes,
    )  # fmt: skip


GROUP = _group(
    "wh_new",
    [
        Attribute(name="events_seen", type="int64", events=[], aggregation="counter"),
        PRODUCT_X_VIEWS,
        LAST_PAGE,
        LAST_PAGE.model_copy(update={"name": "first_page", "aggregation": "first"}),
        *(
            _cart(f"cart_{aggregation}", aggregation)
            for aggregation in ("max", "min", "sum", "mean")
        ),
    ],
)
ATTRIBUTES = [a.name for a in GROUP.attributes]
# Live from before the publication, on the same key, reading no cart (so no state is shared
# with GROUP's, which would keep this group's history).
OTHER = _group(
    "wh_other",
    [
        LAST_PAGE.model_copy(
            update={"name": "pages", "aggregation": "unique_list", "type": "string_list"}
        )
    ],
)


def _ordered() -> list[tuple[dict[str, str], str]]:
    """The seed's (row, TSV line) s in collector-time order (stable)."""
    pairs = list(zip(seed_rows(ECOMMERCE_SEED), seed_tsv(ECOMMERCE_SEED), strict=True))
    return sorted(pairs, key=lambda pair: event_ms(pair[0]["collector_tstamp"]))


def _produce(bootstrap: str, topic: str, delta: int, indexes: list[int]) -> None:
    ordered = _ordered()

    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=[bootstrap], enable_idempotence=False)
        await producer.start()
        try:
            for i in indexes:
                row, line = ordered[i]
                stamp = event_ms(row["collector_tstamp"]) + delta
                value = shift_record(line.encode(), delta)
                await producer.send(topic, value, partition=i % PARTITIONS, timestamp_ms=stamp)
            await producer.flush()
        finally:
            await producer.stop()

    asyncio.run(produce())


def _in_log(i: int) -> bool:
    return i >= LOG_STARTS[i % PARTITIONS]


def _warehouse(tmp_path: Path, delta: int) -> Path:
    """Every seed event in ``atomic.events``, its times shifted as the replayed records'."""
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        load_duckdb(con, typed_csv(tmp_path))
        shift = f"INTERVAL {delta} MILLISECOND"
        con.execute(
            f"UPDATE atomic.events SET collector_tstamp = collector_tstamp + {shift}, "
            f"derived_tstamp = derived_tstamp + {shift}"
        )
    return path


def _expected() -> dict[str, dict[str, Any]]:
    """Every user's values from the CSV rows, in plain Python (the shift changes no value)."""
    rows: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in seed_rows(ECOMMERCE_SEED):
        if row["domain_userid"]:
            rows[row["domain_userid"]].append(row)
    out = {}
    for user, events in rows.items():
        timed = [
            (event_ms(r["derived_tstamp"]), seed_event_id(r["event_id"]), r["page_url"])
            for r in events
            if r["page_url"]
        ]
        carts = []
        for r in events:
            cart = json.loads(r[f"contexts_{ECOM.replace('.', '_')}_cart_1_0_0"] or "[]")
            if cart and cart[0].get("total_value") is not None:
                carts.append(float(cart[0]["total_value"]))
        out[user] = {
            "events_seen": len(events),
            "product_x_views": sum(r["page_url"].endswith("/productX") for r in events),
            "last_page": max(timed)[2] if timed else None,
            "first_page": min(timed)[2] if timed else None,
            "cart_max": max(carts) if carts else None,
            "cart_min": min(carts) if carts else None,
            "cart_sum": float(sum(carts)),  # an empty sum reads 0
            "cart_mean": sum(carts) / len(carts) if carts else None,
        }
    return out


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    for name in ATTRIBUTES:
        x, y = a.get(name), b.get(name)
        if isinstance(x, float) or isinstance(y, float):
            if x is None or y is None or not math.isclose(x, y, rel_tol=1e-9):
                return False
        elif x != y:
            return False
    return True


def _differences(
    got: dict[str, dict[str, Any]], want: dict[str, dict[str, Any]]
) -> dict[str, tuple[Any, Any]]:
    return {u: (got.get(u), want[u]) for u in want if not _same(got.get(u) or {}, want[u])}


def _values(worker: Worker, group: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Each user's values, read one entity at a time (``/tables``)."""
    found = {}
    for user in ids:
        status, raw = worker.get(f"/tables/{group}/1/{user}", timeout=5)
        assert status == 200, raw
        found[user] = dict(json.loads(raw)["attributes"])
    return found


def _poll(fetch: Callable[[], T], done: Callable[[T], bool], timeout_s: float) -> T | None:
    """``fetch()`` until ``done`` holds for it (then it), or its last answer at the deadline
    (None: it never answered)."""
    deadline = time.monotonic() + timeout_s
    found: T | None = None
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, AssertionError):
            found = fetch()
            if done(found):
                break
        time.sleep(0.5)
    return found


def _wait_values(
    worker: Worker, group: str, want: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    got = _poll(
        lambda: _values(worker, group, sorted(want)), lambda g: not _differences(g, want), 120
    )
    return got or {}


def _filled(stats: dict[str, Any]) -> bool:
    """The warehouse part and every log task of the backfill are done."""
    parts, tasks = list(stats["warehouse_backfills"].values()), stats["backfills"]
    return (
        len(parts) == 1 and parts[0]["state"] == "done"
        and len(tasks) == PARTITIONS and all(t["state"] == "done" for t in tasks)
    )  # fmt: skip


def _reference(broker: LocalBroker, tmp_path: Path, delta: int) -> tuple[StreamApp, Worker]:
    """An app whose input holds every event and whose identical group is live from the start."""
    ref = stream_app(broker, "whbf-ref", input_partitions=PARTITIONS)
    _produce(broker.bootstrap, ref.input_topic, delta, list(range(len(_ordered()))))
    definitions = tmp_path / "reference.json"
    group = GROUP.model_copy(update={"name": "wh_ref", "is_published": True})
    definitions.write_text(json.dumps({"attribute_groups": [group.model_dump(mode="json")]}))
    env = ref.env(tmp_path / "ref-data", SIGNALS_DEFINITIONS=str(definitions))
    worker = Worker(env, tmp_path / "ref.log")
    worker.wait_healthy()
    return ref, worker


@pytest.mark.timeout(600)
def test_a_group_backfilled_from_the_warehouse_equals_one_live_from_the_start(
    kafka_broker: LocalBroker, tmp_path: Path
) -> None:
    delta, _ = shift_to_now()
    ordered = _ordered()
    warehouse = _warehouse(tmp_path, delta)
    app = stream_app(kafka_broker, "whbf", input_partitions=PARTITIONS)
    env = app.env(
        tmp_path / "data",
        SIGNALS_BACKFILL_FROM_WAREHOUSE="true",
        SIGNALS_WAREHOUSE_URL=f"duckdb:///{warehouse}",
    )  # fmt: skip
    worker = Worker(env, tmp_path / "worker.log")
    _, reference = _reference(kafka_broker, tmp_path, delta)
    try:
        worker.wait_healthy()
        SignalsSandbox(api_url=worker.url, sandbox_token=API_TOKEN).publish([OTHER])
        before = [i for i in range(LIVE_FROM) if _in_log(i)]
        _produce(kafka_broker.bootstrap, app.input_topic, delta, before)
        count = sum(1 for i in before if ordered[i][0]["domain_userid"])
        _poll(worker.stats, lambda stats: int(stats["applied"]) >= count, 120)
        oldest = event_ms(ordered[0][0]["collector_tstamp"]) + delta
        since = datetime.fromtimestamp((oldest - 3_600_000) / 1000).astimezone()
        group = GROUP.model_copy(update={"backfill_since_tstamp": since})
        SignalsSandbox(api_url=worker.url, sandbox_token=API_TOKEN).publish([group])
        _produce(
            kafka_broker.bootstrap, app.input_topic, delta, list(range(LIVE_FROM, len(ordered)))
        )
        stats = _poll(worker.stats, _filled, 180) or {}
        assert _filled(stats), f"{stats}\n{worker.log_tail()}"
        want = _expected()
        got = _wait_values(worker, "wh_new", want)
        live = _wait_values(reference, "wh_ref", want)
    finally:
        worker.stop()
        reference.stop()
    assert not _differences(live, want), _differences(live, want)  # the reference is right
    assert not _differences(got, want), _differences(got, want)
    assert not _differences(got, live)
    (part,) = stats["warehouse_backfills"].values()
    # The cut is the latest partition start + 1 ms, and there is an overlap band: events the
    # log holds that were collected before the cut (the warehouse gives them, the log skips).
    collected = [event_ms(row["collector_tstamp"]) + delta for row, _ in ordered]
    firsts = [min(i for i in range(p, len(ordered), PARTITIONS) if _in_log(i)) for p in range(4)]
    assert part["cut_ms"] == max(collected[i] for i in firsts) + 1, part
    band = [i for i in range(len(ordered)) if _in_log(i) and collected[i] < part["cut_ms"]]
    assert len(band) > 50, len(band)
    assert part["entities"] > 0 and stats["warehouse_backfill_merged"] == part["entities"]
    assert stats["backfill_applied"] > 0, stats  # the log's road fed the new slots too
    shown = subprocess.run(
        [sys.executable, "-m", "signals_stream.cli", "backfill", "status"],
        env={**os.environ, **app.env(tmp_path / "cli"), "COLUMNS": "200"},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert f"{part['backfill']} warehouse: done" in shown.stdout, shown.stdout
    assert f"{part['entities']} entities" in shown.stdout
