"""The Redis profiles store: what mirroring costs the stream, how far Redis trails it, and
get-online-attributes from Redis (``signals-stream api``) against the worker, in one run.

Reports (ratios matter more than absolutes on a shared, noisy machine):
  (a) one worker over the same topic without and with SIGNALS_REDIS_URL, alternated for
      --rounds pairs: median events/s and CPU us per event;
  (b) the mirror after the load: rows still queued when the worker has applied the last event,
      and the time until Redis holds every sampled row as the worker does;
  (c) get-online-attributes for 1, 10 and 100 ids: p50/p99 from the worker and from the API
      process (Redis), requests interleaved so both see the same noise.

Run: python bench/bench_retrieval.py [--events 40000] [--users 8000] [--reads 300]
Broker (Tansu), Redis, the worker and the API process share the machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import orjson
import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_pipeline import cpu_seconds, pct  # noqa: E402
from signals_stream.devtools.broker import LocalBroker  # noqa: E402
from signals_stream.devtools.generator import GeneratorConfig, generate_events  # noqa: E402
from signals_stream.devtools.produce import produce_records  # noqa: E402
from signals_stream.events.parse import parse_record  # noqa: E402
from signals_stream.kafka.topics import TopicSpec, ensure_topics  # noqa: E402
from signals_stream.profiles import RedisLayout  # noqa: E402
from signals_stream.registry.loader import load_definitions  # noqa: E402
from signals_stream.routing import entity_projections  # noqa: E402
from tests.integration.workers import API_TOKEN, Worker, free_port  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402

DEFINITIONS = Path(__file__).with_name("definitions.yaml")
PARTITIONS = 4
HEADERS = {"Authorization": f"Bearer {API_TOKEN}"}


def worker_env(
    broker: LocalBroker,
    topic: str,
    state: Path,
    app_id: str | None = None,
    definitions: Path | None = DEFINITIONS,
    **extra: str,
) -> dict[str, str]:
    """One benchmark worker's environment: its own app (unless ``app_id`` names a shared one),
    web port and state directory on ``topic``, started with ``definitions`` (None: none);
    ``extra`` settings win."""
    app_id = app_id or f"bench-ret-{uuid.uuid4().hex[:6]}"
    env = {
        "SIGNALS_BROKER": broker.url,
        "SIGNALS_APP_ID": app_id,
        "SIGNALS_INPUT_TOPIC": topic,
        "SIGNALS_BAD_EVENTS_TOPIC": f"{app_id}-bad",
        "SIGNALS_INTERVENTIONS_TOPIC": f"{app_id}-out",
        "SIGNALS_PARTITIONS": str(PARTITIONS),
        "SIGNALS_WEB_PORT": str(free_port()),
        "SIGNALS_DATA_DIR": str(state),
        "SIGNALS_LOG_LEVEL": "WARNING",
        "SIGNALS_API_TOKEN": API_TOKEN,
        **extra,
    }
    if definitions is not None:
        env.setdefault("SIGNALS_DEFINITIONS", str(definitions))
    return env


async def stats(session: aiohttp.ClientSession, url: str) -> dict:
    async with session.get(f"{url}/stats") as response:
        return await response.json()


async def run_stream(worker: Worker, expected: int, events: int) -> tuple[dict[str, float], dict]:
    """Events/s and CPU per event from the first applied entity update to the last."""
    pid = worker.process.pid
    async with aiohttp.ClientSession(headers=HEADERS) as session:
        while (await stats(session, worker.url))["applied"] == 0:
            await asyncio.sleep(0.05)
        t0, cpu0 = time.perf_counter(), cpu_seconds(pid)
        while (final := await stats(session, worker.url))["applied"] < expected:
            await asyncio.sleep(0.1)
        elapsed, cpu = time.perf_counter() - t0, cpu_seconds(pid) - cpu0
    return {"events_per_s": events / elapsed, "cpu_us": cpu / events * 1e6}, final


async def mirror_catch_up(worker: Worker, redis_url: str, app_id: str, ids: list[str]) -> float:
    """Seconds until Redis holds the worker's bytes for every sampled entity."""
    layout = RedisLayout(app_id)
    refs = [["domain_userid", entity] for entity in ids]
    client = aioredis.Redis.from_url(redis_url)
    started = time.perf_counter()
    try:
        async with aiohttp.ClientSession(headers=HEADERS) as session:
            while True:
                async with session.post(
                    f"{worker.url}/internal/v1/rows", json={"entities": refs}
                ) as response:
                    rows = (await response.json())["rows"]
                copies = await client.mget([layout.row(k, e.encode()) for k, e in refs])
                if all((r and base64.b64decode(r)) == c for r, c in zip(rows, copies, strict=True)):
                    return time.perf_counter() - started
                await asyncio.sleep(0.05)
    finally:
        await client.aclose()


async def read_latencies(
    worker: Worker, api: Worker, ids: list[str], attributes: list[str], reads: int
) -> dict[int, dict[str, float]]:
    results: dict[int, dict[str, float]] = {}
    async with aiohttp.ClientSession(headers=HEADERS) as session:
        for size in (1, 10, 100):
            timings: dict[str, list[float]] = {"worker": [], "redis": []}
            for n in range(reads):
                start = (n * size) % max(1, len(ids) - size)
                body = {
                    "attribute_keys": {"domain_userid": ids[start : start + size]},
                    "attributes": attributes,
                }
                for label, target in (("worker", worker), ("redis", api)):
                    t0 = time.perf_counter()
                    async with session.post(
                        f"{target.url}/api/v1/get-online-attributes", json=body
                    ) as response:
                        await response.read()
                        assert response.status == 200, await response.text()
                        source = response.headers.get("X-Signals-Source", "worker")
                        assert source == label, f"{label} answered by {source}"
                    timings[label].append((time.perf_counter() - t0) * 1000)
            results[size] = {
                f"{label}_{q}": pct(values, p)
                for label, values in timings.items()
                for q, p in (("p50", 0.5), ("p99", 0.99))
            }
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--users", type=int, default=8_000)
    parser.add_argument("--reads", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3, help="plain/mirrored worker pairs")
    args = parser.parse_args()

    generated = generate_events(
        GeneratorConfig(users=args.users, seed=3, start_ms=int(time.time() * 1000) - 3_600_000)
    )
    records = [(ev.key, ev.line) for ev, _ in zip(generated, range(args.events), strict=False)]
    catalog = load_definitions(DEFINITIONS).catalog()
    plan = catalog.routing_plan()
    expected = sum(len(entity_projections(parse_record(line), plan)) for _, line in records)
    users = sorted({parse_record(line).atomic("domain_userid") or "" for _, line in records} - {""})
    group = next(g for g in catalog.groups.values() if g.key_name == "domain_userid")
    attributes = [f"{group.definition.full_name}:{name}" for name in group.attribute_names]

    with LocalBroker() as broker, tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        topic = f"bench-ret-{uuid.uuid4().hex[:6]}-in"
        await ensure_topics([broker.bootstrap], [TopicSpec(topic, PARTITIONS)])
        await produce_records([broker.bootstrap], topic, records, progress=False)
        print(f"{len(records):,} events, {expected:,} entity updates, {len(users):,} users")

        server = RedisServer(root / "redis.log")
        server.start()
        # Alternate plain and mirrored workers over the same topic (each its own app id, so
        # from the start): the machine's noise then hits both alike; medians are compared.
        runs: dict[str, list[dict[str, float]]] = {"plain": [], "mirror": []}
        for round_ in range(args.rounds):
            for label in ("plain", "mirror"):
                extra = {"SIGNALS_REDIS_URL": server.url} if label == "mirror" else {}
                env = worker_env(broker, topic, root / f"{label}-{round_}", **extra)
                worker = Worker(env, root / f"{label}-{round_}.log")
                try:
                    worker.wait_healthy()
                    figures, final = await run_stream(worker, expected, len(records))
                finally:
                    worker.stop()
                runs[label].append(figures)
                print(
                    f"    {label:>6}: {figures['events_per_s']:,.0f} events/s, "
                    f"{figures['cpu_us']:.0f} us CPU/event",
                    flush=True,
                )
        without = {k: statistics.median(r[k] for r in runs["plain"]) for k in runs["plain"][0]}
        mirrored = {k: statistics.median(r[k] for r in runs["mirror"]) for k in without}
        print(
            f"(a) median of {args.rounds}: without Redis {without['events_per_s']:,.0f} events/s, "
            f"{without['cpu_us']:.0f} us CPU/event; with the mirror "
            f"{mirrored['events_per_s']:,.0f} events/s "
            f"({mirrored['events_per_s'] / without['events_per_s']:.2f} x), "
            f"{mirrored['cpu_us']:.0f} us CPU/event "
            f"({mirrored['cpu_us'] / without['cpu_us']:.2f} x)",
            flush=True,
        )

        env = worker_env(broker, topic, root / "mirrored", SIGNALS_REDIS_URL=server.url)
        worker = Worker(env, root / "worker.log")
        api = None
        try:
            worker.wait_healthy()
            _, final = await run_stream(worker, expected, len(records))
            queued = final.get("profiles_mirror", {}).get("lag_rows")
            sample = users[:: max(1, len(users) // 500)]
            catch_up_s = await mirror_catch_up(worker, server.url, env["SIGNALS_APP_ID"], sample)
            async with aiohttp.ClientSession(headers=HEADERS) as session:
                final = await stats(session, worker.url)  # the last batch's rows counted too
            mirror_stats = final.get("profiles_mirror", {})
            queued_writes = mirror_stats.get("written", 0) - mirror_stats.get("resynced_rows", 0)
            print(
                f"(b) mirror when the last event was applied: {queued} rows queued; Redis "
                f"matched the worker for {len(sample)} sampled entities {catch_up_s * 1000:.0f} "
                f"ms later; {final['rows_written']:,} table row writes became "
                f"{queued_writes:,} Redis writes (coalesced), plus "
                f"{mirror_stats.get('resynced_rows', 0):,} resync copies",
                flush=True,
            )
            api_env = {**env, "SIGNALS_WEB_PORT": str(free_port())}
            api = Worker(api_env, root / "api.log", command="api")
            api.wait_healthy()
            reads = await read_latencies(worker, api, users, attributes, args.reads)
            print(f"(c) get-online-attributes, {len(attributes)} attributes, {args.reads} reads:")
            for size, r in reads.items():
                print(
                    f"    {size:>3} ids: worker p50 {r['worker_p50']:.2f} ms p99 "
                    f"{r['worker_p99']:.2f} ms | Redis (api) p50 {r['redis_p50']:.2f} ms p99 "
                    f"{r['redis_p99']:.2f} ms | p50 ratio {r['redis_p50'] / r['worker_p50']:.2f}",
                    flush=True,
                )
        finally:
            if api is not None:
                api.stop()
            worker.stop()
            server.kill()
    out = Path(__file__).with_name("out")
    out.mkdir(exist_ok=True)
    (out / "retrieval.json").write_bytes(
        orjson.dumps(
            {
                "without_mirror": without,
                "with_mirror": mirrored,
                "queued_rows_at_end": queued,
                "catch_up_s": catch_up_s,
                "reads": {str(size): r for size, r in reads.items()},
            },
            option=orjson.OPT_INDENT_2,
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
