"""A restarted worker serves reads from its local state while its first group join is pending
(``agents/early_serving.py``), only for partitions nobody wrote since its clean stop.

The worker's own group timeouts (10 s session: a first join takes ~5 s on the embedded
broker), not the shortened ones of the other integration tests. Expected page views are
counted straight from the TSV lines (``tests.integration.expected.page_views``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from signals_stream.devtools.generator import GeneratorConfig, generate_events
from signals_stream.devtools.produce import produce_records
from signals_stream.events.fields import FIELD_INDEX
from signals_stream.kafka.partitioning import entity_partition
from signals_stream.settings import Settings
from tests.integration.expected import lifetime_definitions, page_views
from tests.integration.workers import Worker, stream_app

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

PARTITIONS = 4
DOMAIN_USERID, DOMAIN_SESSIONID = FIELD_INDEX["domain_userid"], FIELD_INDEX["domain_sessionid"]
DEFAULT_TIMEOUTS = {
    f"SIGNALS_{name.upper()}": str(Settings.model_fields[name].default)
    for name in ("broker_session_timeout_s", "broker_rebalance_timeout_s")
}


def _read(worker: Worker, users: list[str]) -> tuple[int, dict[str, int] | None]:
    """get-online-attributes of ``users``' page views: the status and, on 200, the values."""
    try:
        status, body = worker.request(
            "POST",
            "/api/v1/get-online-attributes",
            {
                "attribute_keys": {"domain_userid": users},
                "attributes": ["ecommerce_user_v1:page_views"],
            },
            timeout=2,
        )
    except OSError:
        return 0, None  # not listening yet
    if status != 200:
        return status, None
    answer = orjson.loads(body)
    return 200, dict(zip(answer["domain_userid"], answer["page_views"], strict=True))


def _healthy(worker: Worker) -> bool:
    try:
        return worker.get("/healthz", timeout=2)[0] == 200
    except OSError:
        return False


def _until(probe: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not probe():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _lines(users: int, seed: int, count: int) -> list[bytes]:
    generated = generate_events(GeneratorConfig(users=users, seed=seed))
    return [next(generated).line for _ in range(count)]


def _by_partition(users: list[str]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for user in users:
        found.setdefault(entity_partition(user.encode(), PARTITIONS), []).append(user)
    return found


def _more_of(user: str, lines: list[bytes]) -> tuple[str, list[bytes], set[int]]:
    """``user``'s events among ``lines``, and the partitions they write (user and sessions)."""
    mine = [line for line in lines if line.split(b"\t")[DOMAIN_USERID] == user.encode()]
    ids = {user.encode()} | {line.split(b"\t")[DOMAIN_SESSIONID] for line in mine}
    return user, mine, {entity_partition(entity, PARTITIONS) for entity in ids}


def _produce(bootstrap: str, topic: str, lines: list[bytes]) -> None:
    asyncio.run(produce_records([bootstrap], topic, ((None, line) for line in lines)))


def _first_run(  # noqa: ANN001
    kafka_broker, tmp_path: Path, env: dict[str, str], lines: list[bytes], settle_s: float = 0.0
) -> None:
    """A worker that applies ``lines`` (values checked by hand) and, after ``settle_s``,
    stops cleanly."""
    views = page_views(lines)
    worker = Worker(env, tmp_path / "first.log")
    try:
        worker.wait_healthy()
        _produce(kafka_broker.bootstrap, env["SIGNALS_INPUT_TOPIC"], lines)
        users = sorted(views)
        _until(lambda: _read(worker, users)[1] == {u: views[u] for u in users}, "first run")
        time.sleep(settle_s)
    finally:
        worker.stop()


def test_a_restarted_worker_serves_exact_values_during_its_join(
    kafka_broker, tmp_path: Path
) -> None:
    lines = _lines(users=12, seed=41, count=900)
    views = page_views(lines)
    users = sorted(views)
    assert len(_by_partition(users)) == PARTITIONS, "every partition holds a user"
    app = stream_app(kafka_broker, "early")
    definitions = lifetime_definitions(tmp_path / "definitions.yaml")
    env = app.env(tmp_path / "state", SIGNALS_DEFINITIONS=str(definitions), **DEFAULT_TIMEOUTS)
    _first_run(kafka_broker, tmp_path, env, lines)

    started = time.monotonic()
    worker = Worker(env, tmp_path / "restart.log")
    try:
        status, served = _read(worker, users)
        while status != 200:
            assert not _healthy(worker), "healthy before any read was served: not early"
            assert time.monotonic() - started < 60, worker.log_tail()
            time.sleep(0.05)
            status, served = _read(worker, users)
        served_s = time.monotonic() - started
        joining = not _healthy(worker)  # asked after the answer: it came during the join
        worker.wait_healthy()
        healthy_s = time.monotonic() - started
        after = _read(worker, users)[1]
    finally:
        worker.stop()
    assert joining, f"served at {served_s:.1f} s, but only once the join was done"
    assert served == {u: views[u] for u in users}, f"served {served}"
    assert after == served
    assert served_s < healthy_s


def test_partitions_another_worker_wrote_are_not_served_early(kafka_broker, tmp_path: Path) -> None:
    generated = _lines(users=12, seed=43, count=3000)
    lines = generated[:900]
    views = page_views(lines)
    users = sorted(views)
    by_partition = _by_partition(users)
    assert len(by_partition) == PARTITIONS
    app = stream_app(kafka_broker, "early-moved")
    definitions = lifetime_definitions(tmp_path / "definitions.yaml")
    common = {"SIGNALS_DEFINITIONS": str(definitions), **DEFAULT_TIMEOUTS}
    env_a = app.env(tmp_path / "state-a", **common)
    # Past Faust's commit interval (2.8 s): B must not re-apply A's last entity events (which
    # rewrites their rows, a change to every partition) but only the events given below.
    _first_run(kafka_broker, tmp_path, env_a, lines, settle_s=4.0)

    # While A is down, B owns every partition and applies more events of one user: the
    # partitions of that user and of its sessions now differ from A's copy.
    moved_user, more, changed = min(
        (found for user in users if page_views((found := _more_of(user, generated[900:]))[1])),
        key=lambda found: len(found[2]),
    )
    assert len(changed) < PARTITIONS, "some partition stays unchanged"
    more_views = page_views(more)[moved_user]
    assert more_views > 0
    worker_b = Worker(app.env(tmp_path / "state-b", **common), tmp_path / "b.log")
    try:
        worker_b.wait_healthy()
        _produce(kafka_broker.bootstrap, app.input_topic, more)
        now = views[moved_user] + more_views
        _until(lambda: _read(worker_b, [moved_user])[1] == {moved_user: now}, "B applied")

        others = [u for p, us in sorted(by_partition.items()) if p not in changed for u in us]
        assert others, "a user in an unchanged partition"
        started = time.monotonic()
        worker_a = Worker(env_a, tmp_path / "a-restart.log")
        try:
            _until(lambda: _read(worker_a, others)[0] == 200, "A serves the unchanged partitions")
            joining = not _healthy(worker_a)
            early = _read(worker_a, [moved_user])
            still_joining = not _healthy(worker_a)
            answers = []  # every answer for the moved user until A is done joining
            while not _healthy(worker_a):
                answers.append(_read(worker_a, [moved_user]))
                assert time.monotonic() - started < 90, worker_a.log_tail()
                time.sleep(0.1)
            final = _read(worker_a, [moved_user])
        finally:
            worker_a.stop()
    finally:
        worker_b.stop()
    assert joining and still_joining, "A had joined before the check: nothing shown early"
    assert early[0] == 503, f"the moved partition was served early: {early}, now {now}"
    stale = [a for a in answers if a[0] == 200 and a[1] != {moved_user: now}]
    assert not stale, f"stale answers {stale[:3]}"
    assert final == (200, {moved_user: now})


def test_a_changelog_write_during_the_join_stops_serving_that_partition(
    kafka_broker, tmp_path: Path
) -> None:
    lines = _lines(users=12, seed=45, count=900)
    users = sorted(page_views(lines))
    by_partition = _by_partition(users)
    app = stream_app(kafka_broker, "early-watch")
    definitions = lifetime_definitions(tmp_path / "definitions.yaml")
    env = app.env(tmp_path / "state", SIGNALS_DEFINITIONS=str(definitions), **DEFAULT_TIMEOUTS)
    _first_run(kafka_broker, tmp_path, env, lines)
    watched, kept = sorted(by_partition)[:2]
    changelog = f"{app.app_id}-entity-state-changelog"

    started = time.monotonic()
    worker = Worker(env, tmp_path / "restart.log")
    try:
        _until(lambda: _read(worker, users)[0] == 200, "served early")
        assert not _healthy(worker), "joined before the check"
        # What another member's write looks like: a record in the partition's changelog
        # (here the partition's last record again, so the state itself is unchanged).
        asyncio.run(_rewrite_last(kafka_broker.bootstrap, TopicPartition(changelog, watched)))
        written = time.monotonic()
        _until(
            lambda: _read(worker, by_partition[watched])[0] == 503 or _healthy(worker),
            "the written partition stops being served",
        )
        stopped_s = time.monotonic() - written
        joining = not _healthy(worker)
        kept_status = _read(worker, by_partition[kept])[0]
    finally:
        worker.stop()
    assert joining, f"not dropped before the join completed ({time.monotonic() - started:.1f} s)"
    assert kept_status == 200, "an unwritten partition stays served"
    assert stopped_s < 3.0, f"dropped {stopped_s:.1f} s after the write"


async def _rewrite_last(bootstrap: str, tp: TopicPartition) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        last = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            batch = (await consumer.getmany(tp, timeout_ms=500)).get(tp, [])
            if not batch and last is not None:
                break
            last = batch[-1] if batch else last
    finally:
        await consumer.stop()
    assert last is not None, "the changelog partition is empty"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        await producer.send_and_wait(tp.topic, last.value, key=last.key, partition=tp.partition)
    finally:
        await producer.stop()
