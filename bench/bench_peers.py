"""Throughput against peers and scaling, all on the same events and broker, in one run.

  (a) ceiling: a bare aiokafka consume + parse loop (bench_pipeline.ceiling);
  (b) Quix Streams 3.28.1 (the closest Python peer), tumbling 1-minute count + sum per user,
      re-keyed by domain_userid, in its own virtualenv (bench/out/quix-venv, made on first use);
  (c) one signals-stream worker with the full benchmark workload: bench/definitions.yaml
      (20 attributes, 3 groups, 2 keys) plus EXTRA_RULES, 5 rule interventions in all;
  (d) two worker processes of one app on the same topic (scaling; the 2 cores are shared with
      the broker, so the ceiling for two is well under 2x).

Each round runs (a)-(d) in turn on the same topic (--rounds N: interleaved rounds, medians and
ranges); (b) and (c) also give the time from the process start to its first event.

Run: python bench/bench_peers.py [--events 100000] [--users 20000] [--rounds 3] [--skip-quix]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import orjson
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_pipeline import DEFINITIONS, PARTITIONS, ceiling, measure_worker  # noqa: E402
from bench.bench_retrieval import worker_env as bench_worker_env  # noqa: E402
from signals_stream.devtools.broker import LocalBroker  # noqa: E402
from signals_stream.devtools.generator import GeneratorConfig, generate_events  # noqa: E402
from signals_stream.devtools.produce import produce_records  # noqa: E402
from signals_stream.events.fields import FIELD_INDEX  # noqa: E402
from signals_stream.events.parse import parse_record  # noqa: E402
from signals_stream.kafka.topics import TopicSpec, ensure_topics  # noqa: E402
from signals_stream.registry.loader import load_definitions  # noqa: E402
from signals_stream.routing import entity_projections  # noqa: E402
from tests.integration.workers import API_TOKEN, Worker  # noqa: E402

OUT = Path(__file__).with_name("out")
# With definitions.yaml's one rule: the 5-intervention workload.
EXTRA_RULES = [
    {
        "name": "cart_trouble",
        "criteria": {"attribute": "bench_user:cart_removals", "operator": ">=", "value": 2},
    },
    {
        "name": "big_spender",
        "criteria": {"attribute": "bench_user:revenue", "operator": ">", "value": 200},
    },
    {
        "name": "taste_changed",
        "criteria": {"attribute": "bench_user:favourite_category", "operator": "changed"},
    },
    {
        "name": "busy_session",
        "criteria": {
            "all": [
                {"attribute": "bench_session:page_views", "operator": ">=", "value": 5},
                {"attribute": "bench_session:max_scroll", "operator": ">", "value": 0},
            ]
        },
    },
]
QUIX_VENV = OUT / "quix-venv"
QUIX_VERSION = "3.28.1"


def quix_python() -> Path:
    python = QUIX_VENV / "bin" / "python"
    if not python.exists():
        print(f"installing quixstreams=={QUIX_VERSION} into {QUIX_VENV} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(QUIX_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", f"quixstreams=={QUIX_VERSION}"],
            check=True,
        )
    return python


def run_quix(bootstrap: str, topic: str, events: int, state_dir: Path) -> dict[str, float]:
    result = subprocess.run(
        [
            str(quix_python()),
            str(Path(__file__).with_name("peers") / "quix_app.py"),
            bootstrap,
            topic,
            str(events),
            str(FIELD_INDEX["domain_userid"]),
            str(FIELD_INDEX["se_value"]),
            str(state_dir),
        ],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"quix run failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return orjson.loads(lines[-1])


def full_workload(path: Path) -> Path:
    doc = yaml.safe_load(DEFINITIONS.read_text())
    doc["interventions"] += [
        {"version": 1, "owner": "bench@example.com", **rule} for rule in EXTRA_RULES
    ]
    path.write_text(yaml.safe_dump(doc))
    return path


def worker_env(
    broker: LocalBroker, app_id: str, topic: str, state: Path, definitions: Path
) -> dict[str, str]:
    return bench_worker_env(
        broker,
        topic,
        state,
        app_id,
        SIGNALS_DEFINITIONS=str(definitions),
        # Two workers of one app join quickly (the local broker waits out rebalance timeouts).
        SIGNALS_BROKER_SESSION_TIMEOUT_S="6",
        SIGNALS_BROKER_REBALANCE_TIMEOUT_S="6",
    )


async def two_workers(workers: list[Worker], expected_applied: int, events: int) -> float:
    async def applied(session: aiohttp.ClientSession) -> int:
        total = 0
        for worker in workers:
            async with session.get(f"{worker.url}/stats") as response:
                total += (await response.json())["applied"]
        return total

    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        while await applied(session) == 0:
            await asyncio.sleep(0.05)
        started = time.perf_counter()
        while await applied(session) < expected_applied:
            await asyncio.sleep(0.1)
        return events / (time.perf_counter() - started)


async def one_round(
    broker: LocalBroker, topic: str, records: int, expected: int, tmp: Path, skip_quix: bool
) -> dict[str, float]:
    """(a)-(d) once, on the topic already holding ``records`` events."""
    results: dict[str, float] = {"ceiling": await ceiling(broker.bootstrap, topic, records)}
    print(f"(a) ceiling: {results['ceiling']:,.0f} events/s", flush=True)
    definitions = full_workload(tmp / "definitions.yaml")
    if not skip_quix:
        quix = run_quix(broker.bootstrap, topic, records, tmp / f"quix-{uuid.uuid4().hex[:6]}")
        results["quix"] = quix["events"] / quix["seconds"]
        results["quix_cpu_us"] = quix["cpu_seconds"] / quix["events"] * 1e6
        results["quix_start_to_first_s"] = quix["start_to_first_s"]
        print(
            f"(b) Quix Streams, tumbling count+sum per user: {results['quix']:,.0f} events/s "
            f"({results['quix_cpu_us']:.0f} us CPU/event), first event "
            f"{results['quix_start_to_first_s']:.1f} s after its start",
            flush=True,
        )
    app_id = f"one-{uuid.uuid4().hex[:6]}"
    started = time.monotonic()
    one = Worker(worker_env(broker, app_id, topic, tmp / app_id, definitions), tmp / "one.log")
    try:
        one.wait_healthy()
        measured = await measure_worker(one, expected, records)
        results["worker_start_to_first_s"] = measured["first_event_at"] - started
    finally:
        one.stop()
    results["one_worker"] = measured["events_per_s"]
    results["one_worker_cpu_us"] = measured["cpu_us_per_event"]
    vs_quix = f", {results['one_worker'] / results['quix']:.2f} x Quix" if "quix" in results else ""
    print(
        f"(c) one worker, full workload: {results['one_worker']:,.0f} events/s "
        f"({results['one_worker'] / results['ceiling']:.2f} x ceiling{vs_quix}), "
        f"{measured['cpu_us_per_event']:.0f} us CPU/event, peak RSS "
        f"{measured['peak_rss_mb']:.0f} MB, first event "
        f"{results['worker_start_to_first_s']:.1f} s after the command",
        flush=True,
    )
    app_id = f"two-{uuid.uuid4().hex[:6]}"
    pair = [
        Worker(
            worker_env(broker, app_id, topic, tmp / f"{app_id}-{i}", definitions),
            tmp / f"{app_id}-{i}.log",
        )
        for i in range(2)
    ]
    try:
        for worker in pair:
            worker.wait_healthy()
        results["two_workers"] = await two_workers(pair, expected, records)
    finally:
        for worker in pair:
            worker.stop()
    results["two_vs_one"] = results["two_workers"] / results["one_worker"]
    print(
        f"(d) two workers: {results['two_workers']:,.0f} events/s "
        f"({results['two_vs_one']:.2f} x one worker)",
        flush=True,
    )
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds of (a)-(d)")
    parser.add_argument("--skip-quix", action="store_true")
    args = parser.parse_args()
    generated = generate_events(
        GeneratorConfig(users=args.users, seed=1, start_ms=int(time.time() * 1000) - 3_600_000)
    )
    records = [(ev.key, ev.line) for ev, _ in zip(generated, range(args.events), strict=False)]
    plan = load_definitions(DEFINITIONS).catalog().routing_plan()
    expected = sum(len(entity_projections(parse_record(line), plan)) for _, line in records)
    rounds: list[dict[str, float]] = []
    with LocalBroker() as broker, tempfile.TemporaryDirectory() as tmp_dir:
        topic = f"peers-{uuid.uuid4().hex[:6]}-in"
        await ensure_topics([broker.bootstrap], [TopicSpec(topic, PARTITIONS)])
        await produce_records([broker.bootstrap], topic, records)
        for index in range(args.rounds):
            print(f"round {index + 1} of {args.rounds}", flush=True)
            tmp = Path(tmp_dir) / f"round-{index}"
            tmp.mkdir()
            rounds.append(
                await one_round(broker, topic, len(records), expected, tmp, args.skip_quix)
            )
    results = {name: [r[name] for r in rounds] for name in rounds[0]}
    if args.rounds > 1:
        for name, values in results.items():
            print(f"    {name}: median {statistics.median(values):,.2f} "
                  f"(range {min(values):,.2f}-{max(values):,.2f})")  # fmt: skip
    OUT.mkdir(exist_ok=True)
    (OUT / "peers.json").write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    asyncio.run(main())
