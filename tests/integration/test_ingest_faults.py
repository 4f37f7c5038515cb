"""Bad input and a bad dead-letter topic, on the real broker with real workers (#12).

* Mutated real enriched lines (tests/mutations.py, only mutations whose outcome its rules
  decide) through a worker: the dead letters on the bad-events topic, by reason, and the good
  events in ``/stats`` equal what the test worked out for each line it produced.
* A bad-events topic that cannot be written (a proxy refuses the dead-letter producer's
  requests): the worker counts it in ``/metrics``, keeps the input commit before the first
  record it could not dead-letter, and once the topic takes writes again every dead letter
  arrives exactly once and the commit moves to the end.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from signals_stream.devtools.broker import LocalBroker, free_port
from tests.datafiles import read_lines
from tests.integration.kafka_proxy import running_proxy
from tests.integration.workers import Worker, read_json_records, running_worker, stream_app
from tests.mutations import DETERMINED, GOOD, Mutant, check_letter, mutants

pytestmark = pytest.mark.integration

INGEST_MODES = pytest.mark.parametrize("ingest_mode", ["lean", "faust"])
MUTANTS = 30_000


async def _produce(
    bootstrap: str, topic: str, values: list[bytes], partitions: int
) -> list[tuple[int, int]]:
    """Produce round-robin over ``partitions``; the (partition, offset) of each value."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        enable_idempotence=False,
        linger_ms=5,
        max_request_size=8 * 1024 * 1024,
    )
    await producer.start()
    try:
        futures = [
            await producer.send(topic, value, key=str(i).encode(), partition=i % partitions)
            for i, value in enumerate(values)
        ]
        return [(md.partition, md.offset) for md in await asyncio.gather(*futures)]
    finally:
        await producer.stop()


def _wait(what: str, check: Callable[[], bool], worker: Worker, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError(
        f"{what} not reached in {timeout_s}s: {worker.stats()}\n{worker.log_tail()}"
    )


@INGEST_MODES
@pytest.mark.timeout(600)
def test_mutated_lines_become_dead_letters_by_reason_and_counted_good_events(
    kafka_broker: LocalBroker, tmp_path: Path, ingest_mode: str
) -> None:
    app = stream_app(kafka_broker, f"fuzz-{ingest_mode}")
    produced: list[Mutant] = list(mutants(MUTANTS, seed=7, mix=DETERMINED))
    expected_good = sum(m.expected == GOOD for m in produced)
    expected_bad = Counter(m.expected for m in produced if m.expected != GOOD)
    assert expected_good + sum(expected_bad.values()) == MUTANTS  # every outcome decided
    assert any(len(m.value) > 1_000_000 for m in produced)
    env = app.env(tmp_path / "state", SIGNALS_INGEST_MODE=ingest_mode)
    with running_worker(env, tmp_path / "worker.log") as worker:
        positions = asyncio.run(
            _produce(kafka_broker.bootstrap, app.input_topic, [m.value for m in produced], 4)
        )
        by_position = dict(zip(positions, produced, strict=True))

        def all_read() -> bool:
            stats = worker.stats()
            return bool(stats["good"] + sum(stats["bad"].values()) >= MUTANTS)

        _wait("all records read", all_read, worker, 240)
        stats = worker.stats()
        assert stats["good"] == expected_good, stats
        kinds = Counter({reason.split("(", 1)[0]: 0 for reason in expected_bad})
        for reason, count in expected_bad.items():
            kinds[reason.split("(", 1)[0]] += count
        assert stats["bad"] == dict(kinds)
        assert stats["dead_letters_pending"] == 0 and stats["dead_letter_send_failures"] == 0

        letters = asyncio.run(
            read_json_records(
                kafka_broker.bootstrap, app.bad_topic, sum(expected_bad.values()), 180, 2.0
            )
        )
    seen: set[tuple[int, int]] = set()
    for letter in letters:
        source = letter["source"]
        position = (source["partition"], source["offset"])
        assert position not in seen  # once each
        seen.add(position)
        mutant = by_position[position]
        check_letter(letter, mutant.value, mutant.expected)
    assert Counter(letter["reason"] for letter in letters) == expected_bad
    assert any(letter["truncated"] for letter in letters)


def _metric(worker: Worker, name: str) -> float:
    status, body = worker.get("/metrics")
    assert status == 200
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


async def _committed(bootstrap: str, group: str, topic: str) -> int | None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    tp = TopicPartition(topic, 0)
    try:  # with the partitions named: Tansu's answer to "all of them" does not decode
        offsets = await admin.list_consumer_group_offsets(group, partitions=[tp])
    finally:
        await admin.close()
    found = offsets.get(tp)
    return None if found is None or found.offset < 0 else found.offset


async def _end_offsets(bootstrap: str, topic: str, partitions: int) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
    finally:
        await consumer.stop()
    return sum(ends.values())


@INGEST_MODES
@pytest.mark.timeout(300)
def test_an_unwritable_dead_letter_topic_holds_the_input_offset_until_it_takes_them(
    tmp_path: Path, ingest_mode: str
) -> None:
    micro = read_lines("kafka-live-viewer-profiles/micro.1.tsv")
    bad_at = {5: b"\xff", 9: b"\t", 14: b"\xc3", 20: b"\t\t", 27: b"\xed\xa0\x80"}
    values, good = [], 0
    for offset in range(30):
        if offset in bad_at:
            values.append(micro[offset] + bad_at[offset])  # NotUtf8 or FieldNumberMismatch
        else:
            values.append(micro[offset])
            good += 1
    proxy_port, broker_port = free_port(), free_port()
    broker = LocalBroker(
        broker_port, log_path=tmp_path / "tansu.log", advertised=f"127.0.0.1:{proxy_port}"
    )
    with (
        running_proxy(proxy_port, broker_port) as proxy,
        broker,
    ):
        app = stream_app(proxy, f"dlq-{ingest_mode}", input_partitions=1)
        proxy.refuse(f"{app.app_id}-dead-letters")  # the worker's dead-letter producer
        group = f"{app.app_id}-ingest" if ingest_mode == "lean" else app.app_id
        env = app.env(
            tmp_path / "state", SIGNALS_INGEST_MODE=ingest_mode, SIGNALS_DEAD_LETTER_TIMEOUT_S="2"
        )
        with running_worker(env, tmp_path / "worker.log") as worker:
            asyncio.run(_produce(proxy.bootstrap, app.input_topic, values, 1))

            def refused() -> bool:
                stats = worker.stats()
                return bool(stats["dead_letters_pending"] >= 1)

            _wait("a refused dead letter", refused, worker, 60)
            if ingest_mode == "lean":  # good events flow on; every bad one waits
                _wait(
                    "all read",
                    lambda: (
                        worker.stats()["good"] == good
                        and worker.stats()["dead_letters_pending"] == len(bad_at)
                    ),
                    worker,
                    60,
                )
                assert worker.stats()["forwarded"] >= 2 * good  # user and session
            time.sleep(4)  # commits run (Faust's every 2.8 s): none may pass offset 5
            assert _metric(worker, "signals_dead_letters_pending") >= 1
            assert _metric(worker, "signals_dead_letter_send_failures_total") >= 1
            committed = asyncio.run(_committed(proxy.bootstrap, group, app.input_topic))
            first_bad = min(bad_at)
            assert committed is None or committed <= first_bad, committed
            if ingest_mode == "lean":
                assert committed == first_bad  # everything before it is done
            assert asyncio.run(_end_offsets(proxy.bootstrap, app.bad_topic, 4)) == 0
            assert proxy.refused >= 1
            assert "is not committed past offset 5" in worker.log_path.read_text()

            proxy.refusing.clear()  # the topic takes writes again
            _wait(
                "the input committed to its end",
                lambda: asyncio.run(_committed(proxy.bootstrap, group, app.input_topic)) == 30,
                worker,
                90,
            )
            assert worker.stats()["dead_letters_pending"] == 0
            assert worker.stats()["good"] == good
            letters = asyncio.run(
                read_json_records(proxy.bootstrap, app.bad_topic, len(bad_at), 30, 2.0)
            )
    offsets = sorted(letter["source"]["offset"] for letter in letters)
    assert offsets == sorted(bad_at)  # each exactly once
    for letter in letters:
        offset = letter["source"]["offset"]
        check_letter(letter, values[offset], "NotUtf8" if bad_at[offset][:1] != b"\t" else
                     f"FieldNumberMismatch({131 + len(bad_at[offset])})")  # fmt: skip
