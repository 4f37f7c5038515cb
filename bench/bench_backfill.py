"""Backfill rate against the live pipeline's, in the same run (issue #15).

One local broker, one topic of generated enriched events. (a) The live baseline: a worker
whose ``bench_user`` group (definitions.yaml, 7 attributes on domain_userid) is published
before it reads the topic: events/s and CPU us/event while it folds the backlog live.
(b) The backfill: a second worker (its own app id, same topic) reads the whole topic with
nothing published, then ``bench_user`` is published with ``backfill_since_tstamp``: records/s
of the backfill (from its tasks' start to the last event they sent folded, per /stats) and
the worker's CPU us per record meanwhile. Both are folds of the same events into the same
attributes, so (b)/(a) is what the backfill road costs against the live one.

    python bench/bench_backfill.py [--events 40000] [--users 8000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_pipeline import DEFINITIONS, cpu_seconds, stats  # noqa: E402
from bench.bench_retrieval import PARTITIONS, worker_env  # noqa: E402
from signals_stream.devtools.broker import LocalBroker  # noqa: E402
from signals_stream.devtools.generator import GeneratorConfig, generate_events  # noqa: E402
from signals_stream.devtools.produce import produce_records  # noqa: E402
from signals_stream.kafka.topics import TopicSpec, ensure_topics  # noqa: E402
from signals_stream.registry.loader import load_definitions  # noqa: E402
from tests.integration.workers import API_TOKEN, Worker  # noqa: E402


async def _publish(session: aiohttp.ClientSession, url: str, body: dict) -> None:
    async with session.post(f"{url}/api/v1/registry/attribute_groups/", json=body) as answer:
        assert answer.status == 200, await answer.text()


async def _wait_good(session: aiohttp.ClientSession, url: str, count: int) -> None:
    while (await stats(session, url))["good"] < count:
        await asyncio.sleep(0.2)


async def live(broker: LocalBroker, topic: str, group: dict, events: int, tmp: Path) -> dict:
    env = worker_env(broker, topic, tmp / "live", f"bf-live-{uuid.uuid4().hex[:6]}", None)
    worker = Worker(env, tmp / "live.log")
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    try:
        worker.wait_healthy()
        async with aiohttp.ClientSession(headers=headers) as session:
            await _publish(session, worker.url, group)
            while (await stats(session, worker.url))["applied"] == 0:
                await asyncio.sleep(0.05)
            t0, cpu0 = time.perf_counter(), cpu_seconds(worker.process.pid)
            await _wait_good(session, worker.url, events)
            while True:  # the backlog folded: applied stops moving
                before = (await stats(session, worker.url))["applied"]
                await asyncio.sleep(0.5)
                if (await stats(session, worker.url))["applied"] == before:
                    break
            elapsed = time.perf_counter() - t0 - 0.5
            cpu = cpu_seconds(worker.process.pid) - cpu0
    finally:
        worker.stop()
    return {"rate": events / elapsed, "cpu_us": cpu / events * 1e6}


async def backfill(broker: LocalBroker, topic: str, group: dict, events: int, tmp: Path) -> dict:
    env = worker_env(broker, topic, tmp / "fill", f"bf-fill-{uuid.uuid4().hex[:6]}", None)
    worker = Worker(env, tmp / "fill.log")
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    since = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    try:
        worker.wait_healthy()
        async with aiohttp.ClientSession(headers=headers) as session:
            await _wait_good(session, worker.url, events)  # consumed with nothing published
            await _publish(session, worker.url, {**group, "backfill_since_tstamp": since})
            while not (await stats(session, worker.url))["backfills"]:
                await asyncio.sleep(0.05)
            t0, cpu0 = time.perf_counter(), cpu_seconds(worker.process.pid)
            while True:  # every task done, and every event it sent folded
                now = await stats(session, worker.url)
                tasks = now["backfills"]
                folded = now["backfill_applied"] + now["backfill_replays"] + now["backfill_live"]
                if (
                    len(tasks) == PARTITIONS
                    and all(t["state"] == "done" for t in tasks)
                    and folded >= sum(t["sent"] for t in tasks)
                ):
                    break
                await asyncio.sleep(0.1)
            elapsed = time.perf_counter() - t0
            cpu = cpu_seconds(worker.process.pid) - cpu0
            final = await stats(session, worker.url)
    finally:
        worker.stop()
    read = sum(t["read"] for t in tasks)
    return {
        "rate": read / elapsed, "cpu_us": cpu / read * 1e6, "read": read,
        "applied": final["backfill_applied"],
    }  # fmt: skip


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--users", type=int, default=8_000)
    args = parser.parse_args()
    generated = generate_events(
        GeneratorConfig(users=args.users, seed=1, start_ms=int(time.time() * 1000) - 3_600_000)
    )
    records = [(ev.key, ev.line) for ev, _ in zip(generated, range(args.events), strict=False)]
    definition = next(g for g in load_definitions(DEFINITIONS).groups if g.name == "bench_user")
    group = {**definition.to_wire(), "is_published": True}
    with LocalBroker() as broker, tempfile.TemporaryDirectory() as tmp:
        topic = f"bf-bench-{uuid.uuid4().hex[:6]}-in"
        await ensure_topics([broker.bootstrap], [TopicSpec(topic, PARTITIONS)])
        summary = await produce_records([broker.bootstrap], topic, records)
        print(f"produced {summary.describe()}", flush=True)
        a = await live(broker, topic, group, len(records), Path(tmp))
        print(f"(a) live: {a['rate']:,.0f} events/s, {a['cpu_us']:.0f} us CPU/event", flush=True)
        b = await backfill(broker, topic, group, len(records), Path(tmp))
        print(
            f"(b) backfill: {b['rate']:,.0f} records/s ({b['rate'] / a['rate']:.2f} x live), "
            f"{b['cpu_us']:.0f} us CPU/record; {b['read']} read, {b['applied']} events folded",
            flush=True,
        )


if __name__ == "__main__":
    asyncio.run(main())
