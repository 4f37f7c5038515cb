"""Event -> intervention on SSE latency at light load, and throughput, per worker configuration.

For each configuration (``--config name:SIGNALS_X=v,...``; the defaults always run first), on
one local broker (Tansu) and a fresh worker with bench/definitions.yaml:
  (a) throughput: a backlog of generated events, events/s and CPU us/event (as bench_pipeline);
  (b) idle CPU of the worker and the broker (the consumers poll even with nothing to read);
  (c) latency at light load (``--rate`` live events/s in the background): each probe opens an
      SSE stream for a new user, then produces a page view stamped "now" for it; the rule
      ``welcome_first_page_view`` fires on it. Reported: produced -> SSE frame, p50/p99, and
      the part up to the rule's evaluation (the frame's ``triggered_at_ms``);
  (d) the baseline, measured alongside (c): one bare Kafka hop (produce -> a group-less
      consumer with the configuration's fetch wait). The pipeline crosses three such hops
      (input, entity events, interventions topic) plus two agent batch windows.

Run: python bench/bench_latency.py [--probes 300] [--rate 50] [--events 20000]
     [--config fast:SIGNALS_CONSUMER_FETCH_MAX_WAIT_MS=10,SIGNALS_AGENT_BATCH_WITHIN_MS=5]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_pipeline import cpu_seconds, measure_worker, pct  # noqa: E402

from signals_stream.devtools.broker import LocalBroker  # noqa: E402
from signals_stream.devtools.generator import GeneratorConfig, generate_events  # noqa: E402
from signals_stream.devtools.produce import produce_records  # noqa: E402
from signals_stream.events.parse import parse_record  # noqa: E402
from signals_stream.kafka.topics import TopicSpec, ensure_topics  # noqa: E402
from signals_stream.registry.loader import load_definitions  # noqa: E402
from signals_stream.routing import entity_projections  # noqa: E402
from signals_stream.settings import Settings  # noqa: E402
from tests.integration.workers import API_TOKEN, Worker, free_port  # noqa: E402

DEFINITIONS = Path(__file__).with_name("definitions.yaml")
PARTITIONS = 4
DOMAIN_USERID, DOMAIN_SESSIONID = 15, 123
TIMESTAMPS = (3, 4, 119, 124)  # collector, dvce_created, dvce_sent, derived


def parse_config(text: str) -> tuple[str, dict[str, str]]:
    name, _, assignments = text.partition(":")
    env = dict(item.split("=", 1) for item in assignments.split(",") if item)
    return name, env


def probe_event(template: bytes, user: str) -> bytes:
    """A page view of a new user (so the rule fires), stamped now: the generator models
    tracker and collector lag, which is not ours to measure."""
    fields = template.split(b"\t")
    fields[DOMAIN_USERID] = user.encode()
    fields[DOMAIN_SESSIONID] = str(uuid.uuid4()).encode()
    fields[6] = str(uuid.uuid4()).encode()  # event_id
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3].encode()
    for index in TIMESTAMPS:
        fields[index] = now
    return b"\t".join(fields)


async def sse_probe(
    session: aiohttp.ClientSession,
    producer: AIOKafkaProducer,
    worker: Worker,
    topic: str,
    template: bytes,
) -> tuple[float, float] | None:
    """Produced -> first SSE ``data:`` frame, and produced -> rule evaluated (the frame's
    ``triggered_at_ms``), in ms; None when no frame came within 10 s."""
    user = str(uuid.uuid4())
    url = f"{worker.url}/api/v1/interventions?domain_userid={user}"
    async with session.get(url, timeout=aiohttp.ClientTimeout(total=15)) as response:
        # Headers arrive once the worker has subscribed the stream: the event comes after.
        event = probe_event(template, user)
        produced = time.time()
        await producer.send_and_wait(topic, event, key=user.encode())
        try:
            async with asyncio.timeout(10):
                async for line in response.content:
                    if line.startswith(b"data: "):
                        arrived = time.time()
                        evaluated = orjson.loads(line[len(b"data: ") :])["triggered_at_ms"] / 1000
                        return (arrived - produced) * 1000, (evaluated - produced) * 1000
        except TimeoutError:
            return None
    return None


async def one_hop(bootstrap: str, fetch_wait_ms: int, stop: asyncio.Event) -> list[float]:
    """Baseline: produce -> consume on a bare topic of as many partitions as the worker's,
    with the worker's fetch wait. (Tansu answers a long-poll early when the data lands in a
    single-partition fetch, often not when the fetch names several partitions.)"""
    topic = f"hop-{uuid.uuid4().hex[:8]}"
    await ensure_topics([bootstrap], [TopicSpec(topic, PARTITIONS)])
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="latest",
        fetch_max_wait_ms=fetch_wait_ms,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    await consumer.start()
    await producer.start()
    samples: list[float] = []
    try:
        for tp in consumer.assignment():
            await consumer.position(tp)
        while not stop.is_set():
            produced = time.time()
            await producer.send_and_wait(topic, orjson.dumps(produced))
            await consumer.getone()
            samples.append((time.time() - produced) * 1000)
            await asyncio.sleep(0.037)  # not in step with the fetch cycle
    finally:
        await producer.stop()
        await consumer.stop()
    return samples


async def light_load_latency(
    bootstrap: str, topic: str, worker: Worker, args: argparse.Namespace, fetch_wait_ms: int
) -> dict[str, float]:
    live = generate_events(GeneratorConfig(users=2000, seed=99, live=True))
    template = next(ev.line for ev in live if b"\tpage_view\t" in ev.line)
    background = asyncio.create_task(
        produce_records([bootstrap], topic, ((ev.key, ev.line) for ev in live), rate=args.rate)
    )
    stop = asyncio.Event()
    baseline = asyncio.create_task(one_hop(bootstrap, fetch_wait_ms, stop))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, linger_ms=0)
    await producer.start()
    try:
        headers = {"Authorization": f"Bearer {API_TOKEN}"}
        async with aiohttp.ClientSession(headers=headers) as session:
            probes = []
            for _ in range(args.probes):  # overlapping probes, one every 50 ms
                probes.append(
                    asyncio.create_task(sse_probe(session, producer, worker, topic, template))
                )
                await asyncio.sleep(0.05)
            results = await asyncio.gather(*probes)
    finally:
        stop.set()
        await producer.stop()
        background.cancel()
    hop = await baseline
    sse = [r[0] for r in results if r is not None]
    evaluated = [r[1] for r in results if r is not None]
    return {
        "sse_p50_ms": pct(sse, 0.5),
        "sse_p99_ms": pct(sse, 0.99),
        "sse_max_ms": max(sse),
        "sse_frames": len(sse),
        "evaluated_p50_ms": pct(evaluated, 0.5),
        "evaluated_p99_ms": pct(evaluated, 0.99),
        "probes": args.probes,
        "hop_p50_ms": pct(hop, 0.5),
        "hop_p99_ms": pct(hop, 0.99),
    }


async def idle_cpu_percent(pids: dict[str, int], seconds: float = 5.0) -> dict[str, float]:
    """CPU % of each process while no event arrives (the consumers still poll)."""
    await asyncio.sleep(2.0)
    cpu0, t0 = {n: cpu_seconds(p) for n, p in pids.items()}, time.perf_counter()
    await asyncio.sleep(seconds)
    elapsed = time.perf_counter() - t0
    return {
        f"idle_cpu_{n}_percent": (cpu_seconds(p) - cpu0[n]) / elapsed * 100 for n, p in pids.items()
    }


async def run_config(
    broker: LocalBroker,
    name: str,
    overrides: dict[str, str],
    records: list[tuple[bytes | None, bytes]],
    expected_applied: int,
    args: argparse.Namespace,
    tmp: Path,
) -> dict[str, float | str]:
    app_id = f"lat-{uuid.uuid4().hex[:6]}"
    topic = f"{app_id}-in"
    out = f"{app_id}-out"
    await ensure_topics(
        [broker.bootstrap], [TopicSpec(topic, PARTITIONS), TopicSpec(out, PARTITIONS)]
    )
    await produce_records([broker.bootstrap], topic, records)
    env = {
        "SIGNALS_BROKER": broker.url,
        "SIGNALS_APP_ID": app_id,
        "SIGNALS_INPUT_TOPIC": topic,
        "SIGNALS_BAD_EVENTS_TOPIC": f"{app_id}-bad",
        "SIGNALS_INTERVENTIONS_TOPIC": out,
        "SIGNALS_PARTITIONS": str(PARTITIONS),
        "SIGNALS_WEB_PORT": str(free_port()),
        "SIGNALS_DATA_DIR": str(tmp / app_id),
        "SIGNALS_LOG_LEVEL": "WARNING",
        "SIGNALS_API_TOKEN": API_TOKEN,
        "SIGNALS_DEFINITIONS": str(DEFINITIONS),
        **overrides,
    }
    fetch_wait_ms = int(
        overrides.get(
            "SIGNALS_CONSUMER_FETCH_MAX_WAIT_MS",
            Settings.model_fields["consumer_fetch_max_wait_ms"].default,
        )
    )
    worker = Worker(env, tmp / f"{app_id}.log")
    try:
        worker.wait_healthy()
        throughput = await measure_worker(worker, expected_applied, len(records))
        idle = await idle_cpu_percent({"worker": worker.process.pid, "broker": broker.pid or 0})
        latency = await light_load_latency(broker.bootstrap, topic, worker, args, fetch_wait_ms)
    finally:
        worker.stop()
    result = {"config": name, **overrides, **throughput, **idle, **latency}
    print(
        f"[{name}] {overrides or '(defaults)'}\n"
        f"  (a) {throughput['events_per_s']:,.0f} events/s, "
        f"{throughput['cpu_us_per_event']:.0f} us CPU/event\n"
        f"  (b) idle CPU: worker {idle['idle_cpu_worker_percent']:.1f} %, "
        f"broker {idle['idle_cpu_broker_percent']:.1f} %\n"
        f"  (c) event -> SSE at {args.rate:g} events/s: p50 {latency['sse_p50_ms']:.0f} ms, "
        f"p99 {latency['sse_p99_ms']:.0f} ms, max {latency['sse_max_ms']:.0f} ms "
        f"({latency['sse_frames']}/{latency['probes']} frames)\n"
        f"      of which produced -> rule evaluated: p50 {latency['evaluated_p50_ms']:.0f} ms, "
        f"p99 {latency['evaluated_p99_ms']:.0f} ms\n"
        f"  (d) baseline, one bare Kafka hop (fetch wait {fetch_wait_ms} ms): "
        f"p50 {latency['hop_p50_ms']:.0f} ms, p99 {latency['hop_p99_ms']:.0f} ms",
        flush=True,
    )
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--events", type=int, default=20_000, help="backlog for (a)")
    parser.add_argument("--users", type=int, default=5_000)
    parser.add_argument("--rate", type=float, default=50.0, help="background events/s in (c)")
    parser.add_argument("--probes", type=int, default=300)
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        type=parse_config,
        help="name:SIGNALS_X=v,SIGNALS_Y=w (repeatable); the defaults always run first",
    )
    args = parser.parse_args()
    generated = generate_events(
        GeneratorConfig(users=args.users, seed=1, start_ms=int(time.time() * 1000) - 3_600_000)
    )
    records = [(ev.key, ev.line) for ev, _ in zip(generated, range(args.events), strict=False)]
    plan = load_definitions(DEFINITIONS).catalog().routing_plan()
    expected_applied = sum(len(entity_projections(parse_record(line), plan)) for _, line in records)
    results = []
    with LocalBroker() as broker, tempfile.TemporaryDirectory() as tmp:
        for name, overrides in [("defaults", {}), *args.config]:
            results.append(
                await run_config(
                    broker, name, overrides, records, expected_applied, args, Path(tmp)
                )
            )
    out = Path(__file__).with_name("out")
    out.mkdir(exist_ok=True)
    (out / "latency.json").write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    asyncio.run(main())
