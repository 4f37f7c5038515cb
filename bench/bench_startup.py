"""Start-up benchmark: a fresh worker to its first event, and a restart with local state to its
first read served, on the embedded broker with the worker's default group timeouts.

  (a) fresh: ``signals-stream worker`` started on an empty data directory, the input topic
      already holding events: seconds from the command to ``/healthz`` 200 and to the first
      event applied (``/stats``);
  (b) restart: the same worker stopped cleanly once every event is applied, started again on
      its data directory: seconds from the command to the first 200 of get-online-attributes
      for a user it holds (503 until its partitions are assigned and recovered), and the
      answer checked against the one read before the stop.

Each round uses a new app; rounds give medians and ranges. Python's start is included.
Run: python bench/bench_startup.py [--rounds 3] [--events 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_retrieval import DEFINITIONS, HEADERS, worker_env  # noqa: E402
from bench.report import save  # noqa: E402
from signals_stream.devtools.broker import LocalBroker  # noqa: E402
from signals_stream.devtools.generator import GeneratorConfig, generate_events  # noqa: E402
from signals_stream.devtools.produce import produce_records  # noqa: E402
from signals_stream.events.fields import FIELD_INDEX  # noqa: E402
from signals_stream.events.parse import parse_record  # noqa: E402
from signals_stream.kafka.topics import TopicSpec, ensure_topics  # noqa: E402
from signals_stream.registry.loader import load_definitions  # noqa: E402
from signals_stream.routing import entity_projections  # noqa: E402
from signals_stream.settings import Settings  # noqa: E402
from tests.integration.workers import Worker  # noqa: E402

PARTITIONS = 4
ATTRIBUTES = ["bench_user_v1:page_views", "bench_user_v1:revenue"]
# The worker's own defaults (tests/integration/workers.py would shorten them).
DEFAULT_TIMEOUTS = {
    f"SIGNALS_{name.upper()}": str(Settings.model_fields[name].default)
    for name in ("broker_session_timeout_s", "broker_rebalance_timeout_s")
}


async def _get(session: aiohttp.ClientSession, url: str) -> dict | None:
    try:
        async with session.get(url) as response:
            return await response.json() if response.status == 200 else None
    except aiohttp.ClientError:
        return None


async def _read(session: aiohttp.ClientSession, url: str, user: str) -> dict | None:
    body = {"attribute_keys": {"domain_userid": [user]}, "attributes": ATTRIBUTES}
    try:
        async with session.post(f"{url}/api/v1/get-online-attributes", json=body) as response:
            return await response.json() if response.status == 200 else None
    except aiohttp.ClientError:
        return None


async def _until(probe, timeout_s: float = 120.0) -> float:  # noqa: ANN001
    """Poll ``probe`` (an async callable) until it returns truthy; the monotonic time then."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await probe():
            return time.monotonic()
        await asyncio.sleep(0.02)
    raise TimeoutError("no answer")


async def one_round(
    broker: LocalBroker, topic: str, user: str, expected_applied: int, tmp: Path, logs: Path
) -> dict:
    app_id = f"start-{uuid.uuid4().hex[:6]}"
    env = worker_env(broker, topic, tmp / app_id, app_id, **DEFAULT_TIMEOUTS)
    if logs != tmp:
        env["SIGNALS_LOG_LEVEL"] = "INFO"
    async with aiohttp.ClientSession(headers=HEADERS) as session:
        started = time.monotonic()
        worker = Worker(env, logs / f"{app_id}.log")
        try:
            url = worker.url
            healthy = await _until(lambda: _get(session, f"{url}/healthz"))

            async def applied(at_least: int) -> bool:
                stats = await _get(session, f"{url}/stats")
                return stats is not None and stats["applied"] >= at_least

            first = await _until(lambda: applied(1))
            await _until(lambda: applied(expected_applied))
            before = await _read(session, url, user)
        finally:
            worker.stop()
        restarted = time.monotonic()
        worker = Worker(env, logs / f"{app_id}-restart.log")
        try:
            answered: list[dict] = []

            async def served() -> bool:
                answer = await _read(session, worker.url, user)
                if answer is not None:
                    answered.append(answer)
                return answer is not None

            serving = await _until(served)
        finally:
            worker.stop()
    return {
        "fresh_healthy_s": healthy - started,
        "fresh_first_event_s": first - started,
        "restart_serving_s": serving - restarted,
        "restart_same_answer": answered[0] == before,
    }


def _summary(values: list[float]) -> str:
    return f"median {statistics.median(values):.1f} s (range {min(values):.1f}-{max(values):.1f})"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--log-dir", help="keep the workers' logs (INFO) here")
    args = parser.parse_args()
    generated = generate_events(
        GeneratorConfig(users=4000, seed=3, start_ms=int(time.time() * 1000) - 600_000)
    )
    chosen = [ev for ev, _ in zip(generated, range(args.events), strict=False)]
    records = [(ev.key, ev.line) for ev in chosen]
    user = chosen[0].line.split(b"\t")[FIELD_INDEX["domain_userid"]].decode()
    plan = load_definitions(DEFINITIONS).catalog().routing_plan()
    expected = sum(len(entity_projections(parse_record(line), plan)) for _, line in records)
    rounds: list[dict] = []
    with LocalBroker() as broker, tempfile.TemporaryDirectory() as tmp:
        topic = f"startup-{uuid.uuid4().hex[:6]}-in"
        await ensure_topics([broker.bootstrap], [TopicSpec(topic, PARTITIONS)])
        await produce_records([broker.bootstrap], topic, records)
        for index in range(args.rounds):
            logs = Path(args.log_dir) if args.log_dir else Path(tmp)
            logs.mkdir(parents=True, exist_ok=True)
            result = await one_round(broker, topic, user, expected, Path(tmp), logs)
            rounds.append(result)
            print(
                f"round {index + 1}: fresh healthy {result['fresh_healthy_s']:.1f} s, first event "
                f"{result['fresh_first_event_s']:.1f} s; restart serving "
                f"{result['restart_serving_s']:.1f} s (same answer: "
                f"{result['restart_same_answer']})",
                flush=True,
            )
    summary = {name: [r[name] for r in rounds] for name in rounds[0]}
    print(f"(a) fresh start to first event: {_summary(summary['fresh_first_event_s'])}")
    print(f"(b) restart to first read served: {_summary(summary['restart_serving_s'])}")
    save("startup", summary)


if __name__ == "__main__":
    asyncio.run(main())
