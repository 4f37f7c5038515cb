"""The Faust application and what it declares: topics and tables, from a ``Settings``.

Nothing here reads the environment or registers an agent or a view: ``make_app`` builds the
app, ``declare_topics`` and the ``tables`` package declare what it owns. The worker's
composition root (``signals_stream.worker``) calls them and registers everything else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aiokafka import TopicPartition
from faust.types import TopicT

from signals_stream.kafka.auth import client_auth, faust_credentials
from signals_stream.kafka.end_offsets import verified_end_offsets
from signals_stream.kafka.group_exit import GroupMember, leave_group
from signals_stream.kafka.transport import SignalsApp
from signals_stream.settings import Settings

__all__ = [
    "ENTITY_EVENTS_TOPIC_SUFFIX",
    "RECEIPTS_TOPIC_SUFFIX",
    "Topics",
    "declare_topics",
    "make_app",
]

ENTITY_EVENTS_TOPIC_SUFFIX = "entity-events"
RECEIPTS_TOPIC_SUFFIX = "intervention-receipts"


def make_app(settings: Settings) -> SignalsApp:
    """Build the Faust app, tuned for a small machine (see docs/architecture.md#tuning)."""
    bootstrap, auth = settings.bootstrap_servers, client_auth(settings)

    async def verify_end_offsets(tps: list[TopicPartition]) -> Mapping[TopicPartition, int]:
        return await verified_end_offsets(bootstrap, tps, auth=auth)

    async def leave(member: GroupMember) -> None:
        await leave_group(bootstrap, member, auth)

    return SignalsApp(
        settings.app_id,
        fetch_max_wait_ms=settings.consumer_fetch_max_wait_ms,
        verify_end_offsets=verify_end_offsets,
        leave_group=leave,
        broker=settings.broker,
        broker_credentials=faust_credentials(settings),
        # The worker registers agents, tables and views explicitly: venusian autodiscovery
        # swallows import errors and would start a worker without its agents.
        autodiscover=False,
        origin="signals_stream",
        store="rocksdb://",
        datadir=str(settings.data_dir),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.topic_replication_factor,
        # Raw bytes everywhere: no Faust codec on the hot path, and table keys hash exactly like
        # the record keys they came from (table_route depends on it).
        key_serializer="raw",
        value_serializer="raw",
        consumer_max_fetch_size=settings.consumer_max_fetch_size,
        broker_max_poll_records=settings.broker_max_poll_records,
        stream_buffer_maxsize=settings.stream_buffer_maxsize,
        producer_linger=settings.producer_linger_ms / 1000,
        producer_max_batch_size=settings.producer_max_batch_size,
        table_standby_replicas=settings.table_standby_replicas,
        broker_session_timeout=settings.broker_session_timeout_s,
        broker_rebalance_timeout=settings.broker_rebalance_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.broker_session_timeout_s / 3),
        # The local broker has no idempotent/transactional producers: at-least-once, with
        # idempotent state updates (offsets recorded in the entity rows).
        processing_guarantee="at_least_once",
        # The canonical URL other workers proxy per-entity reads to; binding stays web_host.
        web_host=settings.advertised_web_host,
        web_port=settings.web_port,
        web_bind=settings.web_host,
        # /table/<name>/<key> would expose raw rows; our own views evaluate and route them.
        web_tables_enabled=False,
        web_router_enabled=True,
    )


@dataclass(frozen=True, slots=True)
class Topics:
    """The topics a worker reads and writes, and the names of the internal ones."""

    input: TopicT
    bad_events: TopicT
    interventions: TopicT
    # Events re-keyed by entity id (raw bytes), so every event of one entity reaches the
    # worker that owns that entity's state row.
    entity_events: TopicT
    # Delivery receipts of direct pushes (one intervention id per record).
    receipts: TopicT

    @property
    def entity_events_name(self) -> str:
        return self.entity_events.get_topic_name()

    @property
    def receipts_name(self) -> str:
        return self.receipts.get_topic_name()


def declare_topics(app: SignalsApp, settings: Settings) -> Topics:
    def raw(name: str) -> TopicT:
        return app.topic(name, key_type=bytes, value_type=bytes)

    return Topics(
        input=raw(settings.input_topic),
        bad_events=raw(settings.bad_events_topic),
        interventions=raw(settings.interventions_topic),
        # Internal: prefixed with the app id like Faust's own topics.
        entity_events=app.topic(
            f"{settings.app_id}-{ENTITY_EVENTS_TOPIC_SUFFIX}",
            key_type=bytes,
            value_type=bytes,
            partitions=settings.partitions,
            internal=True,
        ),
        # Read only while a push waits (seconds): one partition and an hour's retention.
        receipts=app.topic(
            f"{settings.app_id}-{RECEIPTS_TOPIC_SUFFIX}",
            key_type=bytes,
            value_type=bytes,
            partitions=1,
            retention=3600.0,
            internal=True,
        ),
    )
