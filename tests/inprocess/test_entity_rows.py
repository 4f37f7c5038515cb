"""The entity stage in process: ``agents.rows.write_rows`` and the sweep over a built worker,
against expectations counted from the raw TSV lines with a plain ``split``."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter

import orjson

from agents.rows import PendingRows, add_event, write_rows
from agents.sweep import Sweeper
from signals_stream.devtools.generator import GeneratorConfig, generate_events
from signals_stream.engine import SourcedEvent, read_group, step_row
from signals_stream.engine.row import decode_row
from signals_stream.events.fields import FIELD_NAMES
from signals_stream.events.parse import parse_record
from signals_stream.kafka.partitioning import entity_partition
from signals_stream.routing import entity_row_key, route_event
from signals_stream.worker_state import WorkerState
from tests.inprocess.conftest import producer_of

USER = FIELD_NAMES.index("domain_userid")
EVENT = FIELD_NAMES.index("event")
UNSTRUCT = FIELD_NAMES.index("unstruct_event")
CHANGELOG = "signals-stream-entity-state-changelog"


def _lines(count: int) -> list[bytes]:
    start = int(time.time() * 1000) - 20 * 60 * 1000  # inside the 30-minute windows
    config = GeneratorConfig(users=40, seed=7, start_ms=start, ecommerce_share=0.9)
    return [e.line for e in itertools.islice(generate_events(config), count)]


def _expected(lines: list[bytes]) -> tuple[Counter[str], Counter[str]]:
    """Page views and add-to-cart actions per ``domain_userid``, from the TSV alone."""
    page_views: Counter[str] = Counter()
    cart_adds: Counter[str] = Counter()
    for line in lines:
        fields = line.decode().split("\t")
        user = fields[USER]
        if fields[EVENT] == "page_view":
            page_views[user] += 1
        if fields[UNSTRUCT] and '"type":"add_to_cart"' in fields[UNSTRUCT].replace(" ", ""):
            cart_adds[user] += 1
    return page_views, cart_adds


def _pending(state: WorkerState, lines: list[bytes]) -> PendingRows:
    """The batch as the entities agent would queue it (input partition 0, offsets in order)."""
    pending: PendingRows = {}
    for offset, line in enumerate(lines):
        for item in route_event(parse_record(line), state.live.plan, partition=0, offset=offset):
            add_event(pending, item, entity_partition(item.entity_id, state.settings.partitions))
    return pending


def _group_values(state: WorkerState, user: str) -> dict[str, object]:
    raw = state.rows.lookup(
        entity_partition(user.encode(), state.settings.partitions),
        entity_row_key("domain_userid", user.encode()),
    )
    assert raw is not None, user
    group = state.live.catalog.group("ecommerce_user", 1)
    return read_group(decode_row(raw), group, int(time.time() * 1000))


async def test_a_batch_folds_every_users_events_into_one_row_each(worker: WorkerState) -> None:
    lines = _lines(600)
    page_views, cart_adds = _expected(lines)
    assert cart_adds, "the sample must hold add-to-cart actions"
    pending = _pending(worker, lines)

    await write_rows(worker, pending)

    for user in {line.decode().split("\t")[USER] for line in lines}:
        values = _group_values(worker, user)
        assert values["page_views"] == page_views[user], user
        assert values["cart_adds"] == cart_adds[user], user
    # One changelog record per row, holding exactly the bytes stored.
    changelog = producer_of(worker).to(CHANGELOG)
    assert len(changelog) == len(pending)
    for record in changelog:
        assert record.partition is not None and record.key is not None
        assert worker.rows.lookup(record.partition, record.key) == record.value
    assert worker.stats.applied == sum(len(p.events) for p in pending.values())
    assert worker.stats.rows_written == len(pending)


async def test_a_rule_fires_once_per_user_before_its_row_is_written(worker: WorkerState) -> None:
    lines = _lines(600)
    _, cart_adds = _expected(lines)
    await write_rows(worker, _pending(worker, lines))

    sent = producer_of(worker).sent
    fired = [s for s in sent if s.topic == worker.settings.interventions_topic]
    first_cart_add = [orjson.loads(s.value or b"") for s in fired]
    first_cart_add = [i for i in first_cart_add if i["name"] == "first_cart_add"]
    targets = Counter(i["target_attribute_key"]["id"] for i in first_cart_add)
    assert targets == Counter(set(cart_adds)), "exactly once for each user with a cart add"
    # The row that recorded a firing reaches the changelog only after its intervention.
    for instance in first_cart_add:
        user = instance["target_attribute_key"]["id"]
        key = entity_row_key("domain_userid", user.encode())
        position_of_row = next(
            i for i, s in enumerate(sent) if s.topic == CHANGELOG and s.key == key
        )
        position_of_firing = next(
            i
            for i, s in enumerate(sent)
            if s.topic == worker.settings.interventions_topic
            and orjson.loads(s.value or b"")["intervention_id"] == instance["intervention_id"]
        )
        assert position_of_firing < position_of_row


async def test_a_replayed_batch_changes_nothing_and_fires_nothing(worker: WorkerState) -> None:
    lines = _lines(300)
    await write_rows(worker, _pending(worker, lines))
    rows_before = {
        s.key: worker.rows.lookup(s.partition or 0, s.key or b"")
        for s in producer_of(worker).to(CHANGELOG)
    }
    fired_before = len(producer_of(worker).to(worker.settings.interventions_topic))
    applied = worker.stats.applied

    await write_rows(worker, _pending(worker, lines))  # the same input offsets again

    assert worker.stats.applied == applied
    assert worker.stats.replays_skipped == applied
    assert len(producer_of(worker).to(worker.settings.interventions_topic)) == fired_before
    for key, raw in rows_before.items():
        partition = entity_partition(key.split(b"\x1f", 1)[1], worker.settings.partitions)
        assert worker.rows.lookup(partition, key) == raw


async def test_the_sweep_deletes_expired_rows_with_a_tombstone(worker: WorkerState) -> None:
    catalog = worker.live.catalog
    now_ms = int(time.time() * 1000)
    eight_days_ago = now_ms - 8 * 24 * 3600 * 1000  # the example group's ttl is P7D
    line = _lines(1)[0]
    (item, *_) = route_event(parse_record(line), worker.live.plan, partition=0, offset=0)
    partition = entity_partition(item.entity_id, worker.settings.partitions)
    key = entity_row_key(item.key_name, item.entity_id)
    old = step_row(
        None,
        catalog,
        item.key_name,
        item.entity_id,
        [SourcedEvent(item.partition, item.offset, item.projection)],
        eight_days_ago,
    )
    await worker.rows.put(partition, key, old.row)
    fresh_key = entity_row_key(item.key_name, b"someone-active")
    fresh = step_row(None, catalog, item.key_name, b"someone-active", [], now_ms)
    await worker.rows.put(partition, fresh_key, fresh.row)

    await Sweeper(worker).step(partition)

    assert worker.rows.lookup(partition, key) is None
    assert worker.rows.lookup(partition, fresh_key) == fresh.row
    tombstones = [s for s in producer_of(worker).to(CHANGELOG) if s.value is None]
    assert [(t.key, t.partition) for t in tombstones] == [(key, partition)]
    assert worker.rows_swept == 1


async def test_the_changelog_keeps_the_order_of_writes_across_batches(worker: WorkerState) -> None:
    """Puts and deletes of one partition leave in call order, in record batches of three
    (``RecordingProducer.batch_limit``), and the persisted offset is the last record's."""
    rows = worker.rows
    writes: list[tuple[int, bytes, bytes | None]] = [
        (0, b"a", b"1"),
        (1, b"x", b"9"),
        (0, b"b", b"2"),
        (0, b"a", None),  # a tombstone between two values of one key
        (0, b"a", b"3"),
        (0, b"c", b"4"),  # the second batch of partition 0 is full here
        (0, b"d", b"5"),
    ]
    for partition, key, value in writes:
        if value is None:
            await rows.delete(partition, key)
        else:
            await rows.put(partition, key, value)
    sent_before_finish = len(producer_of(worker).to(CHANGELOG))
    await rows.finish_batch()
    await asyncio.sleep(0)  # the acknowledgement callbacks

    changelog = producer_of(worker).to(CHANGELOG)
    assert sent_before_finish == 3, "the first full batch of partition 0 left at once"
    assert [(s.key, s.value) for s in changelog if s.partition == 0] == [
        (key, value) for partition, key, value in writes if partition == 0
    ]
    assert [(s.key, s.value) for s in changelog if s.partition == 1] == [(b"x", b"9")]
    assert rows.persisted_offset(0) == 5  # six records: offsets 0-5
    assert rows.persisted_offset(1) == 0
    assert rows.lookup(0, b"a") == b"3"
