"""Registry API benchmark: how fast a publish is live, and how fast attributes are read.

Two workers of one app on a local broker. Reports, in one run:
  (a) baseline: one record produced and seen by a tail consumer on the same broker (p50/p99);
  (b) publish -> live on the *other* worker: POST a group version on worker 0, poll worker 1
      until it serves it (p50/p99, and the ratio to (a));
  (c) get-online-attributes p50/p99 for 1, 10 and 100 ids, entering at either worker (so
      about half the ids are answered by the other worker), against GET /healthz on the same
      worker as the HTTP floor.

Run: python bench/bench_registry.py [--publishes 30] [--reads 200]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_pipeline import pct  # noqa: E402
from bench.bench_serving import http_floor  # noqa: E402
from signals_stream.devtools.broker import LocalBroker  # noqa: E402
from signals_stream.devtools.generator import GeneratorConfig, generate_events  # noqa: E402
from signals_stream.devtools.produce import produce_records  # noqa: E402
from tests.integration.workers import API_TOKEN, Worker, stream_app  # noqa: E402

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


def group(version: int) -> dict:
    return {
        "name": "bench_reads",
        "version": version,
        "attribute_key": {"name": "domain_userid"},
        "is_published": True,
        "owner": "bench@example.com",
        "attributes": [
            {"name": "events", "type": "int32", "events": [], "aggregation": "counter"},
            {
                "name": "recent_pages",
                "type": "int32",
                "events": [{"name": "page_view"}],
                "aggregation": "counter",
                "period": "PT30M",
            },
            {
                "name": "last_url",
                "type": "string",
                "events": [],
                "aggregation": "last",
                "property": {"type": "atomic", "name": "page_url"},
            },
        ],
    }


async def roundtrip_baseline(bootstrap: str, samples: int) -> list[float]:
    topic = f"bench-rt-{uuid.uuid4().hex[:6]}"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, fetch_max_wait_ms=100)
    await producer.start()
    await producer.send_and_wait(topic, b"warm-up")
    await consumer.start()
    await consumer.seek_to_end()
    times = []
    try:
        for _ in range(samples):
            started = time.perf_counter()
            await producer.send_and_wait(topic, b"x")
            while not await consumer.getmany(timeout_ms=1000):
                pass
            times.append((time.perf_counter() - started) * 1000)
    finally:
        await consumer.stop()
        await producer.stop()
    return times


async def publish_to_live(workers: list[Worker], publishes: int) -> list[float]:
    times = []
    async with aiohttp.ClientSession(headers=AUTH) as session:
        for version in range(2, publishes + 2):
            started = time.perf_counter()
            async with session.post(
                f"{workers[0].url}/api/v1/registry/attribute_groups/", json=group(version)
            ) as response:
                assert response.status == 200, await response.text()
            path = (
                f"{workers[1].url}/api/v1/registry/attribute_groups/bench_reads/versions/{version}"
            )
            while True:
                async with session.get(path) as response:
                    if response.status == 200:
                        break
                await asyncio.sleep(0.002)
            times.append((time.perf_counter() - started) * 1000)
    return times


async def read_latency(
    workers: list[Worker], users: list[str], ids: int, reads: int
) -> list[float]:
    times = []
    async with aiohttp.ClientSession(headers=AUTH) as session:
        for n in range(reads):
            body = {
                "attribute_keys": {
                    "domain_userid": users[(n * ids) % len(users) :][:ids] or users[:ids]
                },
                "service": "bench_service",
            }
            started = time.perf_counter()
            async with session.post(
                f"{workers[n % 2].url}/api/v1/get-online-attributes", json=body
            ) as response:
                await response.read()
                assert response.status == 200
            times.append((time.perf_counter() - started) * 1000)
    return times


async def floor_latency(worker: Worker, reads: int) -> list[float]:
    async with aiohttp.ClientSession() as session:
        return await http_floor(session, worker.url, reads)


def line(label: str, values: list[float], base: float | None = None) -> str:
    ratio = f"   x{pct(values, 0.5) / base:.1f} baseline p50" if base else ""
    return f"{label:<44} p50 {pct(values, 0.5):7.2f} ms   p99 {pct(values, 0.99):7.2f} ms{ratio}"


async def measure(broker: LocalBroker, app_input: str, workers: list[Worker], args) -> None:  # type: ignore[no-untyped-def]
    baseline = await roundtrip_baseline(broker.bootstrap, args.publishes)
    async with aiohttp.ClientSession(headers=AUTH) as session:
        service = {
            "name": "bench_service",
            "owner": "bench@example.com",
            "attribute_groups": [{"name": "bench_reads", "version": 1}],
        }
        for path, body in (("attribute_groups/", group(1)), ("services/", service)):
            url = f"{workers[0].url}/api/v1/registry/{path}"
            async with session.post(url, json=body) as response:
                assert response.status == 200, await response.text()
    live = await publish_to_live(workers, args.publishes)
    events = generate_events(GeneratorConfig(users=2000, seed=3))
    generated = [next(events) for _ in range(20_000)]
    users = sorted({e.domain_userid for e in generated})
    await produce_records([broker.bootstrap], app_input, ((None, e.line) for e in generated))
    await asyncio.sleep(5)
    base = pct(baseline, 0.5)
    print(line("(a) produce -> consumed (baseline)", baseline))
    print(line("(b) publish -> live on the other worker", live, base))
    floor = await floor_latency(workers[0], args.reads)
    print(line("    GET /healthz (HTTP floor)", floor))
    for ids in (1, 10, 100):
        reads = await read_latency(workers, users, ids, args.reads)
        print(line(f"(c) get-online-attributes, {ids} ids", reads, pct(floor, 0.5)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--publishes", type=int, default=30)
    parser.add_argument("--reads", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        broker = LocalBroker(log_path=Path(tmp) / "broker.log")
        broker.start()
        workers: list[Worker] = []
        try:
            app = stream_app(broker, "bench-reg")
            workers = [
                Worker(app.env(Path(tmp) / f"w{i}"), Path(tmp) / f"w{i}.log") for i in range(2)
            ]
            for worker in workers:
                worker.wait_healthy()
            asyncio.run(measure(broker, app.input_topic, workers, args))
        finally:
            for worker in workers:
                worker.stop()
            broker.stop()


if __name__ == "__main__":
    main()
