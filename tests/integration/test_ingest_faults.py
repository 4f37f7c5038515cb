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
import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from signals_stream.devtools.broker import LocalBroker, free_port
from tests.datafiles import read_lines
from tests.integration.kafka_proxy import KafkaProxy, running_proxy
from tests.integration.workers import (
    StreamApp,
    Worker,
    read_json_records,
    running_worker,
    stream_app,
)
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


MICRO = read_lines("kafka-live-viewer-profiles/micro.1.tsv")
# Bad records among the first 30 micro lines: (offset, what is appended) -> NotUtf8 or
# FieldNumberMismatch(132/133).
BAD_AT = {5: b"\xff", 9: b"\t", 14: b"\xc3", 20: b"\t\t", 27: b"\xed\xa0\x80"}


def _with_bad_records(count: int) -> tuple[list[bytes], int]:
    """``count`` micro lines, those at :data:`BAD_AT` made bad; and how many stay good."""
    values = [line + BAD_AT.get(offset, b"") for offset, line in enumerate(MICRO[:count])]
    return values, count - sum(1 for offset in BAD_AT if offset < count)


@contextlib.contextmanager
def _refusing_broker(tmp_path: Path, prefix: str) -> Iterator[tuple[KafkaProxy, StreamApp]]:
    """A broker of its own behind a proxy that refuses the app's dead-letter producer."""
    proxy_port, broker_port = free_port(), free_port()
    broker = LocalBroker(
        broker_port, log_path=tmp_path / "tansu.log", advertised=f"127.0.0.1:{proxy_port}"
    )
    with running_proxy(proxy_port, broker_port) as proxy, broker:
        app = stream_app(proxy, prefix, input_partitions=1)
        proxy.refuse(f"{app.app_id}-dead-letters")  # the worker's dead-letter producer
        yield proxy, app


@INGEST_MODES
@pytest.mark.timeout(300)
def test_an_unwritable_dead_letter_topic_holds_the_input_offset_until_it_takes_them(
    tmp_path: Path, ingest_mode: str
) -> None:
    values, good = _with_bad_records(30)
    with _refusing_broker(tmp_path, f"dlq-{ingest_mode}") as (proxy, app):
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
                        and worker.stats()["dead_letters_pending"] == len(BAD_AT)
                    ),
                    worker,
                    60,
                )
                assert worker.stats()["forwarded"] >= 2 * good  # user and session
            time.sleep(4)  # commits run (Faust's every 2.8 s): none may pass offset 5
            assert _metric(worker, "signals_dead_letters_pending") >= 1
            assert _metric(worker, "signals_dead_letter_send_failures_total") >= 1
            committed = asyncio.run(_committed(proxy.bootstrap, group, app.input_topic))
            first_bad = min(BAD_AT)
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
                read_json_records(proxy.bootstrap, app.bad_topic, len(BAD_AT), 30, 2.0)
            )
    offsets = sorted(letter["source"]["offset"] for letter in letters)
    assert offsets == sorted(BAD_AT)  # each exactly once
    for letter in letters:
        offset = letter["source"]["offset"]
        check_letter(letter, values[offset], "NotUtf8" if BAD_AT[offset][:1] != b"\t" else
                     f"FieldNumberMismatch({131 + len(BAD_AT[offset])})")  # fmt: skip


@pytest.mark.timeout(300)
def test_too_many_waiting_dead_letters_pause_the_lean_input_until_they_are_written(
    tmp_path: Path,
) -> None:
    """Past SIGNALS_DEAD_LETTER_MAX_PENDING kept letters, the lean consumer stops taking
    input (memory stays bounded) and takes it again once they are written."""
    values, good = _with_bad_records(30)
    more = MICRO[30:40]
    with _refusing_broker(tmp_path, "dlq-pause") as (proxy, app):
        group = f"{app.app_id}-ingest"
        env = app.env(
            tmp_path / "state",
            SIGNALS_DEAD_LETTER_TIMEOUT_S="2",
            SIGNALS_DEAD_LETTER_MAX_PENDING="3",
        )
        with running_worker(env, tmp_path / "worker.log") as worker:
            asyncio.run(_produce(proxy.bootstrap, app.input_topic, values, 1))
            _wait(
                "5 letters waiting",
                lambda: worker.stats()["dead_letters_pending"] == len(BAD_AT),
                worker,
                60,
            )
            # The pause takes effect at the consumer's next poll (within its 1 s idle wait).
            _wait("the pause", lambda: "input paused" in worker.log_path.read_text(), worker, 10)
            read = worker.stats()["good"]
            asyncio.run(_produce(proxy.bootstrap, app.input_topic, more, 1))
            time.sleep(4)
            assert worker.stats()["good"] == read  # paused: the 10 new lines wait
            proxy.refusing.clear()
            _wait(
                "the input committed to its end",
                lambda: asyncio.run(_committed(proxy.bootstrap, group, app.input_topic)) == 40,
                worker,
                90,
            )
            assert worker.stats()["good"] == good + len(more)
            letters = asyncio.run(
                read_json_records(proxy.bootstrap, app.bad_topic, len(BAD_AT), 30, 2.0)
            )
    assert sorted(letter["source"]["offset"] for letter in letters) == sorted(BAD_AT)
