"""The single Faust application (glue): settings -> ``faust.App``, the topics it owns.

Run it with ``signals-stream worker`` or ``faust -A signals_stream.app worker``. Agents live in
``agents/``, tables in ``tables/`` and views in ``api/``; they are imported at the end.
"""

from __future__ import annotations

import importlib
import logging

from signals_stream.engine.installed import install_catalog
from signals_stream.errors import ConfigurationError, DefinitionError
from signals_stream.kafka.auth import faust_credentials
from signals_stream.kafka.transport import SignalsApp
from signals_stream.registry import Registry
from signals_stream.registry.entries import fixed_entries
from signals_stream.registry.loader import load_definitions
from signals_stream.settings import Settings, load_settings

__all__ = [
    "ENTITY_EVENTS_TOPIC",
    "ENTITY_EVENTS_TOPIC_SUFFIX",
    "RECEIPTS_TOPIC",
    "RECEIPTS_TOPIC_SUFFIX",
    "app",
    "bad_events_topic",
    "entity_events_topic",
    "input_topic",
    "interventions_topic",
    "make_app",
    "registry",
    "settings",
]

ENTITY_EVENTS_TOPIC_SUFFIX = "entity-events"
RECEIPTS_TOPIC_SUFFIX = "intervention-receipts"


def make_app(settings: Settings) -> SignalsApp:
    """Build the Faust app, tuned for a small machine (see docs/architecture.md#tuning)."""
    return SignalsApp(
        settings.app_id,
        fetch_max_wait_ms=settings.consumer_fetch_max_wait_ms,
        broker=settings.broker,
        broker_credentials=faust_credentials(settings),
        # Agents, tables and views are imported explicitly at the end of this module: venusian
        # autodiscovery swallows import errors and would start a worker without its agents.
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


def _initial_registry(settings: Settings) -> Registry:
    """The registry before its log is read: built-in keys plus the definitions file."""
    if settings.definitions is None:
        return Registry()
    loaded = load_definitions(settings.definitions)
    return Registry(fixed_entries(loaded.keys, loaded.groups, loaded.interventions))


try:
    settings = load_settings()
    # Folded from the registry log by tables/registry_log.py; the engine runs its catalog.
    registry = _initial_registry(settings)
    install_catalog(registry.catalog())
    app = make_app(settings)
except (ConfigurationError, DefinitionError) as exc:  # one clear line, not a traceback
    raise SystemExit(f"signals-stream: {exc}") from None

# Faust's worker spinner sets the root logger to DEBUG when the level is WARN or higher, which
# makes every per-message debug call in aiokafka build a log record. Pin the libraries' levels.
for _library in ("aiokafka", "faust", "mode"):
    logging.getLogger(_library).setLevel(
        max(logging.INFO, logging.getLevelName(settings.log_level))
    )

input_topic = app.topic(settings.input_topic, key_type=bytes, value_type=bytes)
bad_events_topic = app.topic(settings.bad_events_topic, key_type=bytes, value_type=bytes)
interventions_topic = app.topic(settings.interventions_topic, key_type=bytes, value_type=bytes)
# Events re-keyed by entity id (raw bytes), so every event of one entity reaches the worker
# that owns that entity's state row. Internal: prefixed with the app id like Faust's own topics.
entity_events_topic = app.topic(
    f"{settings.app_id}-{ENTITY_EVENTS_TOPIC_SUFFIX}",
    key_type=bytes,
    value_type=bytes,
    partitions=settings.partitions,
    internal=True,
)
ENTITY_EVENTS_TOPIC = entity_events_topic.get_topic_name()
# Delivery receipts of direct pushes (one intervention id per record): a worker that handed a
# pushed intervention to a live SSE subscriber tells the pushing worker. Read only while a push
# waits (seconds), so one partition and an hour's retention are plenty.
receipts_topic = app.topic(
    f"{settings.app_id}-{RECEIPTS_TOPIC_SUFFIX}",
    key_type=bytes,
    value_type=bytes,
    partitions=1,
    retention=3600.0,
    internal=True,
)
RECEIPTS_TOPIC = receipts_topic.get_topic_name()

# Registered last: these modules import the app and topics defined above.
import agents.entities  # noqa: E402, F401
import agents.ingest  # noqa: E402, F401
import agents.intervention_push  # noqa: E402, F401
import agents.interventions_tail  # noqa: E402, F401
import agents.lean_ingest  # noqa: E402, F401
import signals_stream.api.attributes  # noqa: E402, F401
import signals_stream.api.entities  # noqa: E402, F401
import signals_stream.api.interventions  # noqa: E402, F401
import signals_stream.api.metrics  # noqa: E402, F401
import signals_stream.api.registry  # noqa: E402, F401
import signals_stream.api.tables  # noqa: E402, F401
import tables.profiles  # noqa: E402, F401
import tables.registry_log  # noqa: E402, F401

# Last, after every other view: its catch-all JSON 404 for /api/v1/... would shadow them.
importlib.import_module("signals_stream.api.openapi")
