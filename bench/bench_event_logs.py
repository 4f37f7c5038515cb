"""Agentic contexts (event logs): what published logs cost the pipeline, and how fast a
100-event context reads over HTTP, in one run.

Reports (ratios matter more than absolutes on a shared, noisy machine):
  (a) one worker with bench/definitions.yaml (20 attributes, 3 groups, 2 keys) over the same
      pre-produced topic with 0, 1 and 3 published event logs, the three variants interleaved
      for --rounds rounds (each run a fresh app id reading the topic from its start): events/s
      and CPU us per event, medians and ranges, as ratios against the 0-log case. The logs are
      in the app's registry log before its worker starts (records made by the registry's own
      commands), so every event of a run meets them;
  (b) GET /api/v1/event_log for contexts of exactly 100 events (a log published through the
      official SDK on a running worker, its users' buffers filled by a stream): p50/p99 of JSON
      and narrative from the worker and from ``signals-stream api`` (Redis), requests
      interleaved; baseline: GET /healthz on the same worker (the HTTP floor).

Run: python bench/bench_event_logs.py [--events 30000] [--users 6000] [--rounds 3] [--reads 300]
Broker (Tansu), Redis, the worker and the API process share the machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from snowplow_signals import EventLog as SdkEventLog
from snowplow_signals import SignalsSandbox

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_pipeline import pct  # noqa: E402
from bench.bench_retrieval import (  # noqa: E402
    DEFINITIONS,
    HEADERS,
    PARTITIONS,
    run_stream,
    worker_env,
)
from bench.bench_serving import http_floor  # noqa: E402
from signals_stream.definitions.event_logs import EventLog  # noqa: E402
from signals_stream.devtools.broker import LocalBroker  # noqa: E402
from signals_stream.devtools.generator import GeneratorConfig, generate_events  # noqa: E402
from signals_stream.devtools.produce import produce_records  # noqa: E402
from signals_stream.engine import Catalog  # noqa: E402
from signals_stream.events.parse import parse_record  # noqa: E402
from signals_stream.kafka.registry_log import registry_topic  # noqa: E402
from signals_stream.kafka.topics import TopicSpec, ensure_topics  # noqa: E402
from signals_stream.registry import commands  # noqa: E402
from signals_stream.registry.entries import Registry  # noqa: E402
from signals_stream.registry.loader import load_definitions  # noqa: E402
from signals_stream.registry.models import PublishSelection  # noqa: E402
from signals_stream.routing import entity_projections  # noqa: E402
from tests.integration.workers import Worker, free_port  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402

ECOM = "com.snowplowanalytics.snowplow.ecommerce"
SNOWPLOW = "com.snowplowanalytics.snowplow"


def _atomic(name: str, output: str | None = None) -> dict[str, Any]:
    return {"type": "atomic", "name": name, **({"output_name": output} if output else {})}


def _pages(name: str, *extra: dict[str, Any]) -> dict[str, Any]:
    """A selection of one Snowplow web event, keeping its name, URL path and ``extra``."""
    return {
        "event": {"vendor": SNOWPLOW, "name": name},
        "properties": [_atomic("event_name"), _atomic("page_urlpath"), *extra],
    }


# Three logs as an application would publish them: a shopping session (actions and page
# views, with the product), a user's pages across sessions, a session's reading (pings).
LOGS: list[dict[str, Any]] = [
    {
        "name": "bench_session_shop",
        "attribute_key": {"name": "domain_sessionid"},
        "prompt": "You help shoppers.",
        "events": [
            {
                "event": {"vendor": ECOM, "name": "snowplow_ecommerce_action", "major_version": 1},
                "properties": [
                    _atomic("event_name"),
                    _atomic("page_urlpath"),
                    {
                        "type": "event",
                        "vendor": ECOM,
                        "name": "snowplow_ecommerce_action",
                        "major_version": 1,
                        "path": "type",
                    },
                    {
                        "type": "entity",
                        "vendor": ECOM,
                        "name": "product",
                        "major_version": 1,
                        "path": "name",
                        "output_name": "product",
                    },
                ],
            },
            _pages("page_view"),
        ],
        "max_events": 50,
        "max_age_seconds": 1800,
    },
    {
        "name": "bench_user_pages",
        "attribute_key": {"name": "domain_userid"},
        "events": [_pages("page_view", _atomic("page_title", "title"), _atomic("refr_medium"))],
        "max_events": 100,
        "max_age_seconds": 3600,
    },
    {
        "name": "bench_session_reading",
        "attribute_key": {"name": "domain_sessionid"},
        "events": [_pages("page_ping", _atomic("pp_yoffset_max", "scrolled_to"))],
        "max_events": 20,
        "max_age_seconds": 600,
    },
]
# (b): every page view and ping of a user, up to 100 within the hour.
READ_LOG: dict[str, Any] = {
    "name": "bench_context_100",
    "attribute_key": {"name": "domain_userid"},
    "prompt": "You are a shopping assistant. Use the visitor's recent behaviour below.",
    "events": [
        _pages(name, _atomic("page_title", "title"), _atomic("pp_yoffset_max", "scrolled_to"))
        for name in ("page_view", "page_ping")
    ],
    "max_events": 100,
    "max_age_seconds": 3600,
}


def registry_records(logs: list[dict[str, Any]]) -> list[tuple[bytes, bytes]]:
    """The registry-log records that create and publish ``logs`` (what ``POST
    registry/event_logs/`` and ``engines/publish`` would write)."""
    registry = Registry()
    written: dict[bytes, bytes] = {}

    def apply(changes: list[commands.Change]) -> None:
        for change in changes:
            value = change.value()
            assert value is not None
            registry.apply(change.key, value)
            written[change.key] = value

    now = int(time.time() * 1000)
    for body in logs:
        apply(commands.create(registry, "event_logs", body, now)[1])
    selection = PublishSelection.model_validate({"event_logs": [{"name": b["name"]} for b in logs]})
    apply(commands.set_published(registry, selection, True, now))
    return list(written.items())


async def throughput(
    broker: LocalBroker, root: Path, events: int, users: int, rounds: int
) -> dict[int, list[dict[str, float]]]:
    generated = generate_events(
        GeneratorConfig(users=users, seed=1, start_ms=int(time.time() * 1000) - 3_600_000)
    )
    records = [(ev.key, ev.line) for ev, _ in zip(generated, range(events), strict=False)]
    loaded = load_definitions(DEFINITIONS)
    topic = f"bench-logs-{uuid.uuid4().hex[:6]}-in"
    await ensure_topics([broker.bootstrap], [TopicSpec(topic, PARTITIONS)])
    await produce_records([broker.bootstrap], topic, records)
    variants = {0: [], 1: LOGS[:1], 3: LOGS}
    expected: dict[int, int] = {}
    for count, logs in variants.items():
        catalog = loaded.catalog()
        if logs:
            catalog = Catalog.build(
                loaded.groups,
                loaded.keys,
                loaded.interventions,
                event_logs=[EventLog.parse({**b, "is_published": True}) for b in logs],
            )
        plan = catalog.routing_plan()
        expected[count] = sum(len(entity_projections(parse_record(v), plan)) for _, v in records)
    print(
        f"(a) {len(records):,} events ({users:,} users), bench/definitions.yaml plus 0, 1 or 3 "
        f"event logs; {expected[0]:,} entity updates per run",
        flush=True,
    )
    runs: dict[int, list[dict[str, float]]] = {count: [] for count in variants}
    for round_ in range(rounds):
        for count, logs in variants.items():
            app_id = f"bench-logs-{uuid.uuid4().hex[:6]}"
            if logs:
                log_topic = registry_topic(app_id)
                await ensure_topics([broker.bootstrap], [TopicSpec(log_topic, 1, compacted=True)])
                await produce_records([broker.bootstrap], log_topic, registry_records(logs))
            env = worker_env(broker, topic, root / f"{count}-{round_}", app_id=app_id)
            log_path = root / f"{count}-{round_}.log"
            figures = await _one_run(env, log_path, records, expected[count], logs)
            runs[count].append(figures)
            rate, cpu = figures["events_per_s"], figures["cpu_us"]
            stall = figures["commit_stall_s"]
            print(
                f"    round {round_ + 1}, {count} logs: {rate:,.0f} events/s, {cpu:.0f} us/event"
                + (f" (a commit took {stall:.0f} s)" if stall else ""),
                flush=True,
            )
    # Runs here are bimodal: some take ~4-5x the CPU per event, with or without logs, and
    # each of those has a commit lasting ~26 s (docs/next-steps.md #14). The best run is
    # shown beside the median.
    base = statistics.median(r["events_per_s"] for r in runs[0])
    base_cpu = statistics.median(r["cpu_us"] for r in runs[0])
    best = max(r["events_per_s"] for r in runs[0])
    best_cpu = min(r["cpu_us"] for r in runs[0])
    for count, figures in runs.items():
        rates = [r["events_per_s"] for r in figures]
        cpus = [r["cpu_us"] for r in figures]
        print(
            f"    {count} logs: median {statistics.median(rates):,.0f} events/s "
            f"(range {min(rates):,.0f}-{max(rates):,.0f}; {statistics.median(rates) / base:.2f} x "
            f"0 logs), {statistics.median(cpus):.0f} us CPU/event "
            f"({statistics.median(cpus) / base_cpu:.2f} x); best run {max(rates):,.0f} events/s "
            f"({max(rates) / best:.2f} x), {min(cpus):.0f} us CPU/event "
            f"({min(cpus) / best_cpu:.2f} x)",
            flush=True,
        )
    return runs


async def _one_run(
    env: dict[str, str],
    log_path: Path,
    records: list[tuple[bytes, bytes]],
    expected: int,
    logs: list[dict[str, Any]],
) -> dict[str, float]:
    """One fresh worker over the whole topic: its events/s and CPU per event."""
    worker = Worker(env, log_path)
    try:
        worker.wait_healthy()
        figures, _ = await run_stream(worker, expected, len(records))
        if logs:  # the logs really ran: some buffer of the first log is not empty
            await _assert_logged(worker, logs[0]["name"], records)
    finally:
        worker.stop()
    # Faust's warning when a commit outlasts its interval: the slow runs here have one.
    stalls = re.findall(r"Timer commit is overlapping .*runtime=([0-9.]+)", log_path.read_text())
    return {**figures, "commit_stall_s": max(map(float, stalls), default=0.0)}


async def _assert_logged(worker: Worker, log: str, records: list[tuple[bytes, bytes]]) -> None:
    sessions = {parse_record(v).atomic("domain_sessionid") for _, v in records[-200:]}
    async with aiohttp.ClientSession(headers=HEADERS) as session:
        for identifier in sessions:
            url = f"{worker.url}/api/v1/event_log?name={log}&identifier={identifier}"
            async with session.get(url) as response:
                if (await response.json())["events"]:
                    return
    raise AssertionError(f"no session of the last 200 events has entries in {log}")


async def read_latency(broker: LocalBroker, root: Path, reads: int) -> dict[str, float]:
    topic = f"bench-ctx-{uuid.uuid4().hex[:6]}-in"
    await ensure_topics([broker.bootstrap], [TopicSpec(topic, PARTITIONS)])
    redis = RedisServer(root / "redis.log")
    redis.start()
    env = worker_env(broker, topic, root / "ctx", SIGNALS_REDIS_URL=redis.url)
    worker = Worker(env, root / "ctx.log")
    api = None
    try:
        worker.wait_healthy()
        signals = SignalsSandbox(api_url=worker.url, sandbox_token=HEADERS["Authorization"][7:])
        signals.publish([SdkEventLog.model_validate(READ_LOG)])
        generated = generate_events(GeneratorConfig(users=20, seed=7, live=True))
        events = [next(generated) for _ in range(8000)]
        await produce_records([broker.bootstrap], topic, ((e.key, e.line) for e in events))
        users = sorted({e.domain_userid for e in events})
        name = READ_LOG["name"]
        api = Worker(
            {**env, "SIGNALS_WEB_PORT": str(free_port()), "SIGNALS_WORKER_URL": worker.url},
            root / "api.log",
            command="api",
        )
        api.wait_healthy()
        async with aiohttp.ClientSession(headers=HEADERS) as session:

            async def get(target: Worker, identifier: str, fmt: str) -> tuple[float, bytes]:
                url = f"{target.url}/api/v1/event_log"
                query = {"name": name, "identifier": identifier, "format": fmt}
                t0 = time.perf_counter()
                async with session.get(url, params=query) as response:
                    body = await response.read()
                    if response.status != 200:
                        raise OSError(f"{response.status}: {body[:200]!r}")
                return (time.perf_counter() - t0) * 1000, body

            async def entries(target: Worker, identifier: str) -> list[Any] | None:
                try:
                    return list(orjson.loads((await get(target, identifier, "json"))[1])["events"])
                except OSError:  # 503 while partitions are assigned
                    return None

            # Wait until worker and Redis both hold 100 entries for the users that have them.
            deadline = time.monotonic() + 120
            full: list[str] = []
            while time.monotonic() < deadline:
                full = []
                for user in users:
                    a, b = await entries(worker, user), await entries(api, user)
                    if a is not None and len(a) == 100 and a == b:
                        full.append(user)
                if len(full) >= len(users) // 2:
                    break
                await asyncio.sleep(1.0)
            assert full, "no user reached 100 entries"
            sample = (await get(worker, full[0], "narrative"))[1]
            print(
                f"(b) GET /api/v1/event_log, contexts of 100 events ({len(full)} users; JSON "
                f"{len((await get(worker, full[0], 'json'))[1]):,} bytes, narrative "
                f"{len(sample):,} bytes), {reads} reads each, idle stream:",
                flush=True,
            )
            floor = await http_floor(session, worker.url, reads)
            timings: dict[tuple[str, str], list[float]] = {}
            for n in range(reads):
                user = full[n % len(full)]
                for fmt in ("json", "narrative"):
                    for label, target in (("worker", worker), ("api", api)):
                        took, _ = await get(target, user, fmt)
                        timings.setdefault((label, fmt), []).append(took)
        floor_p50 = pct(floor, 0.5)
        print(
            f"    HTTP floor (GET /healthz): p50 {floor_p50:.2f} ms, p99 {pct(floor, 0.99):.2f} ms",
            flush=True,
        )
        result: dict[str, float] = {"floor_p50_ms": floor_p50, "floor_p99_ms": pct(floor, 0.99)}
        for (label, fmt), values in timings.items():
            p50, p99 = pct(values, 0.5), pct(values, 0.99)
            result[f"{label}_{fmt}_p50_ms"], result[f"{label}_{fmt}_p99_ms"] = p50, p99
            where = "worker" if label == "worker" else "signals-stream api (Redis)"
            print(
                f"    {fmt:>9} from {where}: p50 {p50:.2f} ms, p99 {p99:.2f} ms "
                f"({p50 / floor_p50:.1f} x floor p50)",
                flush=True,
            )
        return result
    finally:
        if api is not None:
            api.stop()
        worker.stop()
        redis.kill()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--users", type=int, default=6_000)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved 0/1/3-log rounds")
    parser.add_argument("--reads", type=int, default=300)
    args = parser.parse_args()
    with LocalBroker() as broker, tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        runs = await throughput(broker, root, args.events, args.users, args.rounds)
        reads = await read_latency(broker, root, args.reads)
    out = Path(__file__).with_name("out")
    out.mkdir(exist_ok=True)
    (out / "event_logs.json").write_bytes(
        orjson.dumps(
            {"throughput": {str(k): v for k, v in runs.items()}, "reads": reads},
            option=orjson.OPT_INDENT_2,
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
