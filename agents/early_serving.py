"""Serve reads from local state while a restarted worker's first group join is pending.

On the embedded broker a first join completes after about half the session timeout (5 s at
the 10 s default), and the tables' recovery follows; until then every read would answer 503.
A cleanly stopped worker knows better: it wrote which entity partitions it held and each
one's last changelog offset (``tables.stop_manifest``). At start, once the registry log is
read (the definitions reads evaluate against):

1. each such partition whose changelog still ends right after its offset (verified end
   offsets: Tansu reports some short) is served from the previous run's database, read-only
   (``tables.local_copies``, ``WorkerState.early``): nobody applied anything to it since;
2. a consumer long-polls those changelog partitions from their expected end: any record there
   means another member writes the partition, and it stops being served at once;
3. when the first rebalance completes the assignment decides (``agents.serving_partitions``)
   and the copies are closed.

Production timeouts are untouched: the join takes as long as it takes, reads do not wait for
it. At the clean stop itself the manifest is written after the producer flush, from the
partitions served then and the offsets their databases hold (``RowStore.stop_offsets``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from agents.with_app import WithApp
from signals_stream.kafka.auth import client_auth
from signals_stream.kafka.end_offsets import verified_end_offsets
from signals_stream.worker_state import WorkerState
from tables.local_copies import LocalCopies
from tables.stop_manifest import StopManifest, take_manifest, write_manifest

__all__ = ["register_early_serving"]

logger = logging.getLogger(__name__)

_WATCH_POLL_MS = 500  # how long one long-poll of the changelog tails waits


def register_early_serving(state: WorkerState) -> None:
    app = state.app
    joined = asyncio.Event()  # the first rebalance is complete: the assignment decides

    async def serve_early() -> None:
        manifest = take_manifest(state.rows.directory, state.rows.changelog_topic)
        if manifest is None or not manifest.offsets:
            return
        await state.registry_log.ready.wait()
        try:
            copies = await _verified_copies(state, manifest)
            if copies is None or joined.is_set():
                if copies is not None:
                    copies.close()
                return
            state.early = copies
            logger.info(
                "serving partitions %s from local state until the join completes",
                sorted(copies.partitions),
            )
            await _watch(state, copies, joined)
        except KafkaError as exc:  # never serve a copy that cannot be watched
            logger.warning("early serving stopped: %r", exc)
        finally:
            _end(state)

    async def rebalanced(sender: Any, *args: Any, **kwargs: Any) -> None:
        joined.set()
        _end(state)

    app.add_dependency(WithApp(serve_early))  # beside the join, not after recovery
    app.on_rebalance_complete.connect(rebalanced)  # type: ignore[arg-type]
    app.before_stop = lambda: _before_stop(state)


async def _verified_copies(state: WorkerState, manifest: StopManifest) -> LocalCopies | None:
    settings = state.settings
    changelog = manifest.changelog
    tps = [TopicPartition(changelog, p) for p in manifest.offsets]
    ends = await verified_end_offsets(settings.bootstrap_servers, tps, auth=client_auth(settings))
    unchanged = manifest.unchanged({tp.partition: end for tp, end in ends.items()})
    dbs = {}
    for partition in unchanged:
        db = state.rows.open_read_only(partition)
        if db is not None:
            dbs[partition] = db
    skipped = sorted(set(manifest.offsets) - set(dbs))
    if skipped:
        logger.info(
            "partitions %s changed since the clean stop (ends %s): served after the join",
            skipped,
            {tp.partition: end for tp, end in sorted(ends.items())},
        )
    return LocalCopies(dbs, manifest.offsets) if dbs else None


async def _watch(state: WorkerState, copies: LocalCopies, joined: asyncio.Event) -> None:
    """Until the first rebalance completes, drop a partition as soon as its changelog has a
    record past the verified end."""
    settings = state.settings
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=_WATCH_POLL_MS,
        **client_auth(settings),
    )
    await consumer.start()
    try:
        changelog = state.rows.changelog_topic
        tps = {TopicPartition(changelog, p): p for p in copies.partitions}
        consumer.assign(list(tps))
        for tp, partition in tps.items():
            consumer.seek(tp, copies.last_offsets[partition] + 1)
        while not joined.is_set() and copies.partitions:
            batches = await consumer.getmany(timeout_ms=_WATCH_POLL_MS)
            for tp, records in batches.items():
                if records and tps[tp] in copies:
                    logger.info("partition %d written by another member: not served", tps[tp])
                    copies.drop(tps[tp])
                    consumer.pause(tp)
    finally:
        await consumer.stop()


def _end(state: WorkerState) -> None:
    copies, state.early = state.early, None
    if copies is not None:
        copies.close()


def _before_stop(state: WorkerState) -> Callable[[], None]:
    """At a stop's start: what to write once the producer is flushed."""
    rows = state.rows
    early = {} if state.early is None else dict(state.early.last_offsets)  # still unchanged
    held = rows.stop_offsets(state.serving_partitions - set(early))

    def write() -> None:
        offsets = {**held(), **early}
        write_manifest(rows.directory, StopManifest(rows.changelog_topic, offsets))
        logger.info("clean stop: last changelog offsets %s noted", dict(sorted(offsets.items())))

    return write
