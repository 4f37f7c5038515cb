"""Serving latency while the stream runs: get-online-attributes from the owning worker, through
a non-owning worker, and from Redis (the stateless ``signals-stream api``), in one run.

Two workers of one app (Redis mirror on) share the entity partitions; events are produced at
--rate (about half of one worker's throughput here) the whole time. Each read is classified by
the ``X-Signals-Remote-Entities`` header the worker answers with: 0 means the entry worker owned
every id. Baseline: GET /healthz on the same worker (the HTTP floor), same run.
Targets (issue #6): p99 < 5 ms from a worker and < 2 ms from Redis for one id.

Run: python bench/bench_serving.py [--rate 4000] [--reads 400]
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_pipeline import pct  # noqa: E402
from bench.bench_retrieval import HEADERS, PARTITIONS, worker_env  # noqa: E402
from bench.report import save  # noqa: E402
from signals_stream.devtools.broker import LocalBroker  # noqa: E402
from signals_stream.devtools.generator import GeneratorConfig, generate_events  # noqa: E402
from signals_stream.devtools.produce import produce_records  # noqa: E402
from signals_stream.kafka.topics import TopicSpec, ensure_topics  # noqa: E402
from tests.integration.workers import Worker, free_port  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402

ATTRIBUTES = [
    f"bench_user_v1:{name}"
    for name in ("page_views", "cart_adds", "revenue", "products_viewed", "last_page")
]


async def timed_post(session: aiohttp.ClientSession, url: str, body: dict) -> tuple[float, int]:
    started = time.perf_counter()
    async with session.post(f"{url}/api/v1/get-online-attributes", json=body) as response:
        await response.read()
        assert response.status == 200, await response.text()
        remote = int(response.headers.get("X-Signals-Remote-Entities", "0"))
    return (time.perf_counter() - started) * 1000, remote


async def http_floor(session: aiohttp.ClientSession, url: str, reads: int) -> list[float]:
    """``reads`` GET /healthz round trips to ``url`` in ms: the HTTP floor of a worker."""
    floor = []
    for _ in range(reads):
        started = time.perf_counter()
        async with session.get(f"{url}/healthz") as response:
            await response.read()
        floor.append((time.perf_counter() - started) * 1000)
    return floor


async def measure(
    workers: list[Worker], api: Worker, users: list[str], reads: int, rate: float
) -> None:
    async with aiohttp.ClientSession(headers=HEADERS) as session:
        floor = await http_floor(session, workers[0].url, reads)
        print(
            f"    HTTP floor (GET /healthz): p50 {pct(floor, 0.5):.2f} ms, "
            f"p99 {pct(floor, 0.99):.2f} ms",
            flush=True,
        )
        for size in (1, 10, 100):
            owner: list[float] = []
            mixed: list[float] = []
            redis: list[float] = []
            for n in range(reads):
                start = (n * size * 7) % max(1, len(users) - size)
                body = {
                    "attribute_keys": {"domain_userid": users[start : start + size]},
                    "attributes": ATTRIBUTES,
                }
                took, remote = await timed_post(session, workers[n % 2].url, body)
                (owner if remote == 0 else mixed).append(took)
                redis.append((await timed_post(session, api.url, body))[0])
            label = "through a non-owning worker" if size == 1 else "entry worker, ids mixed"
            parts = [
                f"{size:>3} ids: owning worker p50 {pct(owner, 0.5):.2f} / p99 "
                f"{pct(owner, 0.99):.2f} ms ({len(owner)})"
                if owner
                else f"{size:>3} ids:",
                f"{label} p50 {pct(mixed, 0.5):.2f} / p99 {pct(mixed, 0.99):.2f} ms ({len(mixed)})"
                if mixed
                else "",
                f"Redis (api) p50 {pct(redis, 0.5):.2f} / p99 {pct(redis, 0.99):.2f} ms",
            ]
            print("    " + " | ".join(p for p in parts if p), flush=True)
            if size == 1 and owner:
                one_id = {"owner_p99_ms": pct(owner, 0.99), "redis_p99_ms": pct(redis, 0.99)}
                save("serving", {"rate": rate, **one_id})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=4000.0)
    parser.add_argument("--reads", type=int, default=400)
    parser.add_argument("--users", type=int, default=5000)
    args = parser.parse_args()
    with LocalBroker() as broker, tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        topic = f"bench-serve-{uuid.uuid4().hex[:6]}-in"
        asyncio.run(ensure_topics([broker.bootstrap], [TopicSpec(topic, PARTITIONS)]))
        redis = RedisServer(tmp / "redis.log")
        redis.start()
        base = worker_env(broker, topic, tmp / "w0", SIGNALS_REDIS_URL=redis.url)
        envs = [
            base,
            {**base, "SIGNALS_DATA_DIR": str(tmp / "w1"), "SIGNALS_WEB_PORT": str(free_port())},
        ]
        workers = [Worker(env, tmp / f"w{i}.log") for i, env in enumerate(envs)]
        api = None
        try:
            for worker in workers:
                worker.wait_healthy()
            generated = generate_events(GeneratorConfig(users=args.users, seed=5, live=True))
            warm = [next(generated) for _ in range(20_000)]
            users = sorted({e.domain_userid for e in warm})
            asyncio.run(produce_records([broker.bootstrap], topic, ((e.key, e.line) for e in warm)))
            time.sleep(5)  # both workers settled, rows mirrored
            api = Worker(
                {
                    **base,
                    "SIGNALS_WEB_PORT": str(free_port()),
                    "SIGNALS_WORKER_URL": workers[0].url,
                },
                tmp / "api.log",
                command="api",
            )
            api.wait_healthy()

            async def run() -> None:
                stop = time.monotonic() + 3600

                def load():  # type: ignore[no-untyped-def]  # noqa: ANN202
                    while time.monotonic() < stop:
                        event = next(generated)
                        yield event.key, event.line

                feeder = asyncio.create_task(
                    produce_records([broker.bootstrap], topic, load(), rate=args.rate)
                )
                await asyncio.sleep(3)
                print(
                    f"get-online-attributes ({len(ATTRIBUTES)} attributes) while "
                    f"{args.rate:,.0f} events/s stream in:",
                    flush=True,
                )
                try:
                    await measure(workers, api, users, args.reads, args.rate)
                finally:
                    feeder.cancel()

            asyncio.run(run())
        finally:
            if api is not None:
                api.stop()
            for worker in workers:
                worker.stop()
            redis.kill()


if __name__ == "__main__":
    main()
