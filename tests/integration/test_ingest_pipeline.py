"""End to end on a real broker: enriched lines in, dead letters and entity rows out."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from signals_stream.events.dead_letters import original_bytes
from tests.datafiles import DATA_DIR
from tests.integration.workers import Worker, read_json_records, running_worker, stream_app

pytestmark = pytest.mark.integration

MICRO = DATA_DIR / "kafka-live-viewer-profiles" / "micro.1.tsv"
WIDEROW = DATA_DIR / "snowplow-rdb-loader" / "widerow-json.input-events.tsv"
INVALID_TS = DATA_DIR / "snowplow-rdb-loader" / "invalidtimestamp.input-events.tsv"
# The loader rejected 2 of those 3 lines (negative year, year 0); the third is a valid event.
INVALID_TS_BADROWS = DATA_DIR / "snowplow-rdb-loader" / "invalidtimestamp.output-badrows.jsonl"


# Both ways of reading the input topic (SIGNALS_INGEST_MODE) must behave alike.
INGEST_MODES = pytest.mark.parametrize("ingest_mode", ["lean", "faust"])


def _lines(path: Path) -> list[bytes]:
    return [line for line in path.read_bytes().split(b"\n") if line]


async def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        for value in values:
            await producer.send(topic, value=value, key=str(uuid.uuid4()).encode())
        await producer.flush()
    finally:
        await producer.stop()


@INGEST_MODES
def test_bad_records_reach_the_dead_letter_topic_and_good_ones_the_entity_rows(
    kafka_broker, tmp_path: Path, ingest_mode: str
) -> None:
    app = stream_app(kafka_broker, "it")
    micro = _lines(MICRO)
    widerow = _lines(WIDEROW)
    malformed = [line for line in widerow if line.count(b"\t") != 130]
    assert len(malformed) == 2
    not_utf8 = micro[0].replace(b"page_view", b"page_\xffview", 1)
    invalid_ts = [
        line for line in _lines(INVALID_TS) if line.split(b"\t")[2].startswith((b"-", b"0000"))
    ]
    assert len(invalid_ts) == len(_lines(INVALID_TS_BADROWS))
    bad_inputs = [*malformed, *invalid_ts, not_utf8, b"", b"{not json"]
    env = app.env(tmp_path / "state", SIGNALS_INGEST_MODE=ingest_mode)
    with running_worker(env, tmp_path / "worker.log") as worker:
        asyncio.run(_produce(kafka_broker.bootstrap, app.input_topic, [*micro, *bad_inputs]))
        dead = asyncio.run(
            read_json_records(kafka_broker.bootstrap, app.bad_topic, len(bad_inputs), 60)
        )
        assert len(dead) == len(bad_inputs), worker.log_tail()
        reasons = sorted(record["reason"] for record in dead)
        assert reasons.count("FieldNumberMismatch(130)") == 1
        assert reasons.count("FieldNumberMismatch(129)") == 1
        assert reasons.count("NotUtf8") == 1
        assert reasons.count("InvalidTimestamp(etl_tstamp)") == len(invalid_ts)
        assert sorted(original_bytes(r) for r in dead) == sorted(bad_inputs)
        assert all(r["source"]["topic"] == app.input_topic for r in dead)

        # The 73 good micro events belong to one user and one session.
        user = micro[0].split(b"\t")[15].decode()
        session = micro[0].split(b"\t")[123].decode()
        deadline = time.monotonic() + 60
        body: dict = {}
        while time.monotonic() < deadline:
            status, raw = worker.get(f"/entities/domain_userid/{user}")
            body = orjson.loads(raw) if raw else {}
            if status == 200 and body.get("events") == len(micro):
                break
            time.sleep(0.5)
        assert body.get("events") == len(micro), (body, worker.log_tail())
        status, raw = worker.get(f"/entities/domain_sessionid/{session}")
        assert status == 200 and orjson.loads(raw)["events"] == len(micro)
        status, raw = worker.get("/entities/domain_userid/nobody-has-this-id")
        assert status == 404 and orjson.loads(raw)["error"] == "not_found"


@INGEST_MODES
def test_input_already_keyed_by_an_attribute_key_skips_the_repartition_for_it(
    kafka_broker, tmp_path: Path, ingest_mode: str
) -> None:
    """Enrich can key records by ``domain_userid``: with the Faust agent, those events update
    the user rows straight from the input partition and only the session events cross the
    entity-events topic; the lean consumer (its own group, so not co-partitioned with the
    table) sends both across. The rows come out the same."""
    app = stream_app(kafka_broker, "keyed")
    input_topic = app.input_topic
    micro = _lines(MICRO)
    user = micro[0].split(b"\t")[15]
    session = micro[0].split(b"\t")[123].decode()
    env = app.env(
        tmp_path / "state", SIGNALS_INPUT_KEYED_BY="domain_userid", SIGNALS_INGEST_MODE=ingest_mode
    )

    async def produce_keyed() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=kafka_broker.bootstrap, enable_idempotence=False
        )
        await producer.start()
        try:
            for value in micro:
                await producer.send(input_topic, value=value, key=user)
            await producer.flush()
        finally:
            await producer.stop()

    with running_worker(env, tmp_path / "worker.log") as worker:
        asyncio.run(produce_keyed())
        deadline = time.monotonic() + 60
        stats: dict = {}
        while time.monotonic() < deadline:
            stats = orjson.loads(worker.get("/stats")[1])
            if stats["applied"] >= 2 * len(micro):
                break
            time.sleep(0.5)
        assert stats["applied"] == 2 * len(micro), (stats, worker.log_tail())
        crossing = len(micro) if ingest_mode == "faust" else 2 * len(micro)
        assert stats["forwarded"] == crossing  # faust: the session events only
        for key, entity in (("domain_userid", user.decode()), ("domain_sessionid", session)):
            status, raw = worker.get(f"/entities/{key}/{entity}")
            assert status == 200 and orjson.loads(raw)["events"] == len(micro), (key, raw)


def test_switching_to_the_lean_consumer_continues_where_the_faust_agent_stopped(
    kafka_broker, tmp_path: Path
) -> None:
    """The lean consumer's group starts each partition at the Faust agent group's committed
    offset, so an existing deployment that switches modes does not read its input again."""
    app = stream_app(kafka_broker, "switch")
    micro = _lines(MICRO)
    user = micro[0].split(b"\t")[15].decode()
    state = tmp_path / "state"

    def wait_applied(worker: Worker, applied: int) -> dict:
        deadline = time.monotonic() + 60
        stats: dict = {}
        while time.monotonic() < deadline:
            stats = orjson.loads(worker.get("/stats")[1])
            if stats["applied"] >= applied:
                break
            time.sleep(0.5)
        return stats

    with running_worker(app.env(state, SIGNALS_INGEST_MODE="faust"), tmp_path / "w1.log") as w:
        asyncio.run(_produce(kafka_broker.bootstrap, app.input_topic, micro))
        assert wait_applied(w, 2 * len(micro))["applied"] == 2 * len(micro), w.log_tail()
    more = micro[:10]
    with running_worker(app.env(state, SIGNALS_INGEST_MODE="lean"), tmp_path / "w2.log") as w:
        asyncio.run(_produce(kafka_broker.bootstrap, app.input_topic, more))
        stats = wait_applied(w, 2 * len(more))
        time.sleep(1.0)  # a re-read of the first events would show up by now
        stats = orjson.loads(w.get("/stats")[1])
        assert stats["good"] == len(more), (stats, w.log_tail())
        assert stats["applied"] == 2 * len(more) and stats["replays_skipped"] == 0, stats
        status, raw = w.get(f"/entities/domain_userid/{user}")
        assert status == 200 and orjson.loads(raw)["events"] == len(micro) + len(more)
