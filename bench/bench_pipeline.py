"""End-to-end benchmark: enriched TSV on a local broker -> one signals-stream worker.

Reports, in one run (ratios matter more than absolutes on a shared, noisy machine):
  (a) the ceiling: a bare aiokafka consume + parse loop over the same topic;
  (b) one worker process with the 20-attribute / 3-group / 2-key workload
      (bench/definitions.yaml): events/s, CPU us per event, peak RSS;
  (c) event time -> value visible in the table view, p50/p99, at half of (b)'s rate;
  (d) table-view read latency p50/p99 under that load;
  (e) with --sustain-rate R: the same records produced at R events/s for --sustain-seconds;
      whether the worker keeps up (its backlog when the producer stops, how long it takes to
      drain) and its CPU share meanwhile. The producer runs in this process, on the same cores.

Run: python bench/bench_pipeline.py [--events 100000] [--users 20000] [--sustain-rate 8000]
The broker (Tansu) shares the machine's cores with the worker, as in the reference figures.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from signals_stream.devtools.broker import LocalBroker  # noqa: E402
from signals_stream.devtools.generator import GeneratorConfig, generate_events  # noqa: E402
from signals_stream.devtools.produce import produce_records  # noqa: E402
from signals_stream.engine.installed import LiveCatalog  # noqa: E402
from signals_stream.events.parse import parse_record  # noqa: E402
from signals_stream.kafka.topics import TopicSpec, ensure_topics  # noqa: E402
from signals_stream.registry.loader import load_definitions  # noqa: E402
from signals_stream.routing import entity_projections  # noqa: E402
from tests.integration.workers import API_TOKEN, Worker, free_port  # noqa: E402

DEFINITIONS = Path(__file__).with_name("definitions.yaml")
PARTITIONS = 4


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def ceiling(bootstrap: str, topic: str, count: int) -> float:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"ceiling-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 * 1024 * 1024,
        max_poll_records=5000,
    )
    await consumer.start()
    seen = 0
    started = None
    try:
        while seen < count:
            batch = await consumer.getmany(timeout_ms=1000)
            for messages in batch.values():
                if started is None:
                    started = time.perf_counter()
                for message in messages:
                    parse_record(message.value)
                seen += len(messages)
    finally:
        await consumer.stop()
    return count / (time.perf_counter() - (started or time.perf_counter()))


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def stats(session: aiohttp.ClientSession, url: str) -> dict:
    async with session.get(f"{url}/stats") as response:
        return await response.json()


async def measure_worker(worker: Worker, expected_applied: int, events: int) -> dict[str, float]:
    pid = worker.process.pid
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_TOKEN}"}) as session:
        while (await stats(session, worker.url))["applied"] == 0:
            await asyncio.sleep(0.05)
        first_event_at = time.monotonic()
        t0, cpu0 = time.perf_counter(), cpu_seconds(pid)
        while (await stats(session, worker.url))["applied"] < expected_applied:
            await asyncio.sleep(0.1)
        elapsed, cpu = time.perf_counter() - t0, cpu_seconds(pid) - cpu0
        final = await stats(session, worker.url)
    print(f"    worker counters: {final}", flush=True)
    return {
        "events_per_s": events / elapsed,
        "cpu_us_per_event": cpu / events * 1e6,
        "peak_rss_mb": peak_rss_mb(pid),
        "first_event_at": first_event_at,  # time.monotonic()
    }


async def sustained(
    bootstrap: str,
    topic: str,
    worker: Worker,
    records: list[tuple[bytes, bytes]],
    applied_per_record: list[int],
    rate: float,
    seconds: float,
) -> dict[str, float]:
    """Produce ``records`` over and over at ``rate`` for ``seconds``; then see how far behind
    the worker is and how long it takes to catch up."""
    pid = worker.process.pid
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_TOKEN}"}) as session:
        before = await stats(session, worker.url)
        stop = time.monotonic() + seconds
        sent = 0

        def paced():  # noqa: ANN202
            nonlocal sent
            for record in itertools.cycle(records):
                if time.monotonic() >= stop:
                    return
                sent += 1
                yield record

        t0, cpu0 = time.perf_counter(), cpu_seconds(pid)
        await produce_records([bootstrap], topic, paced(), rate=rate)
        elapsed, cpu = time.perf_counter() - t0, cpu_seconds(pid) - cpu0
        cycles, rest = divmod(sent, len(records))
        expected = before["applied"] + cycles * sum(applied_per_record)
        expected += sum(applied_per_record[:rest])
        at_stop = await stats(session, worker.url)
        drained = time.perf_counter()
        while (await stats(session, worker.url))["applied"] < expected:
            await asyncio.sleep(0.1)
        drain_s = time.perf_counter() - drained
    behind = sent - (at_stop["good"] - before["good"])
    return {
        "rate": sent / elapsed,
        "behind_events": behind,
        "drain_s": drain_s,
        "worker_cores": cpu / elapsed,
        "cpu_us_per_event": cpu / sent * 1e6,
    }


async def first_sse_frame(session: aiohttp.ClientSession, url: str) -> float:
    """Wall-clock ms at which the first ``data:`` frame of an SSE stream arrives."""
    async with session.get(url, timeout=aiohttp.ClientTimeout(total=None)) as response:
        async for line in response.content:
            if line.startswith(b"data: "):
                return time.time() * 1000
    raise RuntimeError("stream ended without a frame")


async def latency_under_load(
    bootstrap: str, topic: str, worker: Worker, rate: float, seconds: float
) -> dict[str, float]:
    """Produce live events at ``rate`` while probing visibility and read latency."""
    live = generate_events(GeneratorConfig(users=5000, seed=99, live=True))
    page_views = (ev.line for ev in live if b"\tpage_view\t" in ev.line)
    stop = time.monotonic() + seconds

    def load():  # noqa: ANN202
        while time.monotonic() < stop:
            ev = next(live)
            yield ev.key, ev.line

    load_task = asyncio.create_task(produce_records([bootstrap], topic, load(), rate=rate))
    visible: list[float] = []
    sse: list[float] = []
    reads: list[float] = []
    known_users: list[str] = []
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_TOKEN}"}) as session:
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, enable_idempotence=False, linger_ms=0
        )
        await producer.start()
        try:
            while time.monotonic() < stop - 2:
                probe = str(uuid.uuid4())
                fields = next(page_views).split(b"\t")
                fields[15] = probe.encode()
                fields[123] = str(uuid.uuid4()).encode()
                # Stamp the probe "now" (the generator models tracker and pipeline lag, which
                # is not ours to measure): event time = the moment it is produced.
                now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3].encode()
                for index in (3, 4, 119, 124):  # collector, dvce_created, dvce_sent, derived
                    fields[index] = now
                event_time_ms = parse_record(b"\t".join(fields)).event_time_ms
                stream = asyncio.create_task(
                    first_sse_frame(
                        session, f"{worker.url}/api/v1/interventions?domain_userid={probe}"
                    )
                )
                await asyncio.sleep(0.05)  # the subscription is open before the event exists
                await producer.send_and_wait(topic, b"\t".join(fields), key=probe.encode())
                url = f"{worker.url}/tables/bench_user/{probe}"
                while time.monotonic() < stop + 10:
                    started = time.perf_counter()
                    async with session.get(url) as response:
                        body = await response.json()
                    reads.append((time.perf_counter() - started) * 1000)
                    if body["attributes"]["page_views"] >= 1:
                        visible.append(time.time() * 1000 - event_time_ms)
                        known_users.append(probe)
                        break
                    await asyncio.sleep(0.002)
                try:
                    arrived_ms = await asyncio.wait_for(stream, 10)
                    sse.append(arrived_ms - event_time_ms)
                except TimeoutError:
                    pass
                await asyncio.sleep(0.05)
        finally:
            await producer.stop()
        await load_task
    return {
        "visible_p50_ms": pct(visible, 0.5),
        "visible_p99_ms": pct(visible, 0.99),
        "probes": len(visible),
        "sse_p50_ms": pct(sse, 0.5) if sse else float("nan"),
        "sse_p99_ms": pct(sse, 0.99) if sse else float("nan"),
        "sse_frames": len(sse),
        "read_p50_ms": pct(reads, 0.5),
        "read_p99_ms": pct(reads, 0.99),
        "reads": len(reads),
    }


def spy_on(worker: Worker, seconds: float, out: Path) -> subprocess.Popen[bytes] | None:
    """``py-spy record`` of the worker (its first ``seconds``), as raw collapsed stacks."""
    if seconds <= 0:
        return None
    command = ["py-spy", "record", "--pid", str(worker.process.pid), "--duration"]
    command += [str(int(seconds)), "--format", "raw", "--rate", "50", "-o", str(out)]
    spy = Path(sys.executable).with_name("py-spy")
    command[0] = str(spy) if spy.exists() else command[0]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--sustain-rate", type=float, default=0.0, help="(e): events/s; 0 = skip")
    parser.add_argument("--sustain-seconds", type=float, default=30.0)
    parser.add_argument(
        "--definitions", default=str(DEFINITIONS), help="'none': built-in keys, no attributes"
    )
    parser.add_argument("--log-dir", help="keep the worker's log (INFO) here, one file per run")
    parser.add_argument(
        "--spy-seconds", type=float, default=0.0, help="py-spy record the worker this long"
    )
    args = parser.parse_args()

    generated = generate_events(
        GeneratorConfig(users=args.users, seed=1, start_ms=int(time.time() * 1000) - 3_600_000)
    )
    records = [(ev.key, ev.line) for ev, _ in zip(generated, range(args.events), strict=False)]
    definitions = None if args.definitions == "none" else Path(args.definitions)
    catalog = load_definitions(definitions).catalog() if definitions else None
    plan = LiveCatalog(catalog).plan
    applied_per_record = [len(entity_projections(parse_record(line), plan)) for _, line in records]
    expected_applied = sum(applied_per_record)
    random.seed(1)
    with LocalBroker() as broker, tempfile.TemporaryDirectory() as tmp:
        app_id = f"bench-{uuid.uuid4().hex[:6]}"
        topic = f"{app_id}-in"
        await ensure_topics([broker.bootstrap], [TopicSpec(topic, PARTITIONS)])
        summary = await produce_records([broker.bootstrap], topic, records)
        print(f"produced {summary.describe()}", flush=True)
        rate_a = await ceiling(broker.bootstrap, topic, len(records))
        print(f"(a) ceiling: {rate_a:,.0f} events/s", flush=True)
        env = {
            "SIGNALS_BROKER": broker.url,
            "SIGNALS_APP_ID": app_id,
            "SIGNALS_INPUT_TOPIC": topic,
            "SIGNALS_BAD_EVENTS_TOPIC": f"{app_id}-bad",
            "SIGNALS_INTERVENTIONS_TOPIC": f"{app_id}-out",
            "SIGNALS_PARTITIONS": str(PARTITIONS),
            "SIGNALS_WEB_PORT": str(free_port()),
            "SIGNALS_DATA_DIR": str(Path(tmp) / "state"),
            "SIGNALS_LOG_LEVEL": "INFO" if args.log_dir else "WARNING",
            "SIGNALS_API_TOKEN": API_TOKEN,
        }
        if definitions:
            env["SIGNALS_DEFINITIONS"] = str(definitions)
        log_dir = Path(args.log_dir) if args.log_dir else Path(tmp)
        log_dir.mkdir(parents=True, exist_ok=True)
        worker = Worker(env, log_dir / f"worker-{app_id}.log")
        spy = spy_on(worker, args.spy_seconds, log_dir / f"spy-{app_id}.txt")
        try:
            worker.wait_healthy()
            b = await measure_worker(worker, expected_applied, len(records))
            print(
                f"(b) worker: {b['events_per_s']:,.0f} events/s "
                f"({b['events_per_s'] / rate_a:.2f} x ceiling), "
                f"{b['cpu_us_per_event']:.0f} us CPU/event, peak RSS {b['peak_rss_mb']:.0f} MB",
                flush=True,
            )
            if definitions is None:
                return
            c = await latency_under_load(
                broker.bootstrap, topic, worker, b["events_per_s"] / 2, args.latency_seconds
            )
            print(
                f"(c) event -> visible at {b['events_per_s'] / 2:,.0f} events/s: "
                f"p50 {c['visible_p50_ms']:.0f} ms, p99 {c['visible_p99_ms']:.0f} ms "
                f"({c['probes']} probes)\n"
                f"    event -> intervention on SSE: p50 {c['sse_p50_ms']:.0f} ms, "
                f"p99 {c['sse_p99_ms']:.0f} ms ({c['sse_frames']} frames)\n"
                f"(d) table view read under load: p50 {c['read_p50_ms']:.1f} ms, "
                f"p99 {c['read_p99_ms']:.1f} ms ({c['reads']} reads)",
                flush=True,
            )
            if args.sustain_rate:
                e = await sustained(
                    broker.bootstrap,
                    topic,
                    worker,
                    records,
                    applied_per_record,
                    args.sustain_rate,
                    args.sustain_seconds,
                )
                c |= {f"sustained_{name}": value for name, value in e.items()}
                print(
                    f"(e) sustained {e['rate']:,.0f} events/s for {args.sustain_seconds:.0f} s: "
                    f"{e['behind_events']:,.0f} events behind when the producer stopped, "
                    f"drained in {e['drain_s']:.1f} s; worker {e['worker_cores']:.2f} cores, "
                    f"{e['cpu_us_per_event']:.0f} us CPU/event",
                    flush=True,
                )
        finally:
            worker.stop()
            if spy is not None:
                spy.wait()
    out = Path(__file__).with_name("out")
    out.mkdir(exist_ok=True)
    (out / "pipeline.json").write_bytes(
        orjson.dumps(
            {"ceiling_events_per_s": rate_a, **b, **c, "events": len(records)},
            option=orjson.OPT_INDENT_2,
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
