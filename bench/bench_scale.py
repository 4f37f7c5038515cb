"""Scale benchmark: restoring N entities from the changelog, and the memory they take.

A worker's local RocksDB is gone (a new machine, a lost volume); it rebuilds every entity row
from the `entity-state` changelog before serving. This writes N real-shaped rows (rows built by
the engine from generated events with the 20-attribute benchmark definitions, reused across
ids) straight to the changelog, then starts one worker on an empty data directory.

Reports, in one run:
  (a) baseline: a bare aiokafka consumer reading the same changelog end to end;
  (b) the worker: start -> healthy (tables recovered) with N rows, minus the same worker's
      start -> healthy on an empty changelog; rows/s and the ratio to (a);
  (c) peak RSS of the worker with N rows vs an idle worker with none.

Run: python bench/bench_scale.py [--entities 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_pipeline import peak_rss_mb  # noqa: E402
from bench.report import save  # noqa: E402
from signals_stream.devtools.broker import LocalBroker  # noqa: E402
from signals_stream.devtools.generator import GeneratorConfig, generate_events  # noqa: E402
from signals_stream.engine import fold_events  # noqa: E402
from signals_stream.engine.row import EntityRow, encode_row  # noqa: E402
from signals_stream.events.parse import Event, parse_record  # noqa: E402
from signals_stream.kafka.topics import TopicSpec, ensure_topics  # noqa: E402
from signals_stream.registry.loader import load_definitions  # noqa: E402
from signals_stream.routing import entity_row_key, route_event  # noqa: E402
from tests.integration.workers import Worker, stream_app  # noqa: E402

DEFINITIONS = Path(__file__).with_name("definitions.yaml")
PARTITIONS = 4


def template_rows(count: int = 500) -> dict[str, list[bytes]]:
    """Encoded rows per key name, built by the real engine from generated events."""
    catalog = load_definitions(DEFINITIONS).catalog()
    plan = catalog.routing_plan()
    rows: dict[tuple[str, bytes], EntityRow] = {}
    events = generate_events(GeneratorConfig(users=count, seed=7))
    for offset in range(count * 15):
        event = parse_record(next(events).line)
        for key_name, entity_id, _, _, projection in route_event(
            event, plan, partition=0, offset=offset
        ):
            row = rows.setdefault((key_name, entity_id), EntityRow())
            row.mark_applied(0, offset)
            fold_events(row, catalog.programs[key_name], [Event.from_projection(projection)], 0)
            row.record_events([event], now_ms=int(time.time() * 1000))
    templates: dict[str, list[bytes]] = {}
    for (key_name, _), row in rows.items():
        templates.setdefault(key_name, []).append(encode_row(row))
    return templates


async def write_changelog(bootstrap: str, topic: str, entities: int) -> float:
    """N rows, keyed and partitioned as the worker writes them; mean row size in bytes."""
    templates = template_rows()
    keys = sorted(templates)
    partitions = list(range(PARTITIONS))
    partitioner = DefaultPartitioner()
    rng = random.Random(1)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=512 * 1024
    )
    await producer.start()
    size = 0
    last: dict[int, tuple[bytes, bytes]] = {}
    try:
        pending = []
        for n in range(entities):
            key_name = keys[n % len(keys)]
            entity_id = str(uuid.UUID(int=rng.getrandbits(128))).encode()
            value = rng.choice(templates[key_name])
            partition = partitioner(entity_id, partitions, partitions)
            key = entity_row_key(key_name, entity_id)
            size += len(value)
            last[partition] = (key, value)
            pending.append(await producer.send(topic, value, key=key, partition=partition))
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        # The local broker reports a partition's end as its last *batch*'s base offset + 1:
        # end each partition with a batch of one record (a repeat of its last row).
        for partition, (key, value) in last.items():
            await producer.send_and_wait(topic, value, key=key, partition=partition)
    finally:
        await producer.stop()
    return size / entities


async def read_all(bootstrap: str, topic: str, expected: int) -> float:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        max_poll_records=10_000,
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
        await consumer.seek_to_beginning()
        started, seen = time.perf_counter(), 0
        while seen < expected:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                seen += len(records)
        return time.perf_counter() - started
    finally:
        await consumer.stop()


def start_until_healthy(env: dict[str, str], log: Path) -> tuple[Worker, float]:
    started = time.perf_counter()
    worker = Worker(env, log)
    worker.wait_healthy(timeout_s=3600)
    return worker, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entities", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        broker = LocalBroker(log_path=tmp / "broker.log")
        broker.start()
        try:
            # An idle worker of an empty app: the start-up cost and memory floor.
            empty = stream_app(broker, "scale-empty")
            env = {**empty.env(tmp / "empty"), "SIGNALS_DEFINITIONS": str(DEFINITIONS)}
            idle, idle_s = start_until_healthy(env, tmp / "idle.log")
            idle_rss = peak_rss_mb(idle.process.pid)
            idle.stop()

            app = stream_app(broker, "scale")
            changelog = f"{app.app_id}-entity-state-changelog"
            asyncio.run(
                ensure_topics(
                    [broker.bootstrap], [TopicSpec(changelog, PARTITIONS, compacted=True)]
                )
            )
            started = time.perf_counter()
            row_bytes = asyncio.run(write_changelog(broker.bootstrap, changelog, args.entities))
            print(
                f"wrote {args.entities:,} rows ({row_bytes:.0f} B mean) in "
                f"{time.perf_counter() - started:.0f} s",
                flush=True,
            )
            bare_s = asyncio.run(read_all(broker.bootstrap, changelog, args.entities))
            env = {**app.env(tmp / "state"), "SIGNALS_DEFINITIONS": str(DEFINITIONS)}
            worker, total_s = start_until_healthy(env, tmp / "worker.log")
            rss = peak_rss_mb(worker.process.pid)
            worker.stop()
            restore_s = max(total_s - idle_s, 1e-3)
            print(
                f"(a) bare consumer reads the changelog     {bare_s:8.1f} s   "
                f"{args.entities / bare_s:10,.0f} rows/s"
            )
            print(
                f"(b) worker restores it (start {total_s:.1f} s - idle start {idle_s:.1f} s) "
                f"{restore_s:8.1f} s   {args.entities / restore_s:10,.0f} rows/s   "
                f"x{restore_s / bare_s:.1f} the bare read"
            )
            save(
                "scale",
                {"entities": args.entities, "bare_s": bare_s, "restore_s": restore_s},
            )
            print(
                f"(c) peak RSS: {rss:,.0f} MB with {args.entities:,} entities, "
                f"{idle_rss:,.0f} MB idle ({(rss - idle_rss) * 1024 * 1024 / args.entities:.0f}"
                " B per entity)"
            )
        finally:
            broker.stop()


if __name__ == "__main__":
    main()
