"""The worker's composition root: settings in, a Faust app with everything registered out.

:func:`build_worker` is the one place that wires the worker, in this order:

1. the app, its topics and tables (``signals_stream.app``, ``tables/``);
2. the worker's state (``WorkerState``): registry and live catalog (definitions file first,
   then the registry log), counters, subscriber hub, push receipts, Redis mirror, row store
   (which restores newly assigned partitions from the changelog, ``tables/restore.py``);
3. the registry log's tail, then the agents: the dead-letter sender, ingest (lean consumer or
   Faust agent), entities with the sweep, the interventions and push-receipt tails, the Redis
   mirror's drain, early serving (reads from local state while a restart's join is pending);
4. the views, the catch-all JSON 404 for ``/api/v1/...`` last (its pattern would shadow them).

Importing this module does nothing. ``faust -A signals_stream.worker worker`` reads the
module's ``app`` attribute, which builds the worker from the environment on first access;
``signals-stream worker`` calls :func:`build_worker` itself.
"""

from __future__ import annotations

import logging
from functools import cache, partial

from agents.backfill import register_backfills
from agents.dead_letter_sender import register_dead_letter_sender
from agents.early_serving import register_early_serving
from agents.entities import register_entities
from agents.ingest import register_faust_ingest, register_stats_log
from agents.interventions_tail import register_interventions_tail
from agents.lean_ingest import register_lean_ingest
from agents.profiles_mirror import register_profiles_mirror
from agents.push_receipts import register_push_receipts
from agents.serving_partitions import register_serving_partitions
from agents.warehouse_backfill import register_warehouse_backfills
from agents.warehouse_sync import register_warehouse_sync
from agents.with_app import WithApp
from signals_stream.api.attributes import register_attribute_views
from signals_stream.api.datasets import register_dataset_views
from signals_stream.api.entities import register_entity_views
from signals_stream.api.event_log import register_event_log_views
from signals_stream.api.interventions import register_intervention_views
from signals_stream.api.metrics import register_metrics_view
from signals_stream.api.openapi import register_catch_all_view, register_docs_views
from signals_stream.api.registry import register_registry_views
from signals_stream.api.sync_status import register_sync_status_views
from signals_stream.api.tables import register_table_views
from signals_stream.api.testing import register_history_views
from signals_stream.api.user_data import register_user_data_views
from signals_stream.app import declare_topics, make_app
from signals_stream.delivery.hub import Hub
from signals_stream.delivery.push import DeliveryReceipts
from signals_stream.delivery.pusher import Pusher
from signals_stream.delivery.recent import RecentInterventions
from signals_stream.errors import ConfigurationError, DefinitionError
from signals_stream.kafka.auth import client_auth
from signals_stream.kafka.registry_log import RegistryLog
from signals_stream.kafka.transport import SignalsApp
from signals_stream.profiles.worker import worker_mirror
from signals_stream.settings import Settings, load_settings
from signals_stream.worker_state import WorkerState
from tables.entity_rows import declare_entity_rows
from tables.restore import restore_partitions
from tables.row_store import RowStore

__all__ = ["build_worker", "default_worker"]


def build_worker(settings: Settings) -> WorkerState:
    """A worker for ``settings``: its app with every agent, table and view registered."""
    _pin_library_log_levels(settings)
    registry_log = RegistryLog.from_settings(settings)  # the definitions file, then the log
    live = registry_log.live

    app = make_app(settings)
    topics = declare_topics(app, settings)
    entity_rows = declare_entity_rows(app, settings)

    mirror = worker_mirror(settings, live)
    token = settings.api_token
    state = WorkerState(
        settings=settings,
        app=app,
        topics=topics,
        entity_rows=entity_rows,
        rows=RowStore(app, entity_rows, mirror),
        registry_log=registry_log,
        hub=Hub(
            recent=RecentInterventions(
                lookback_ms=settings.sse_resume_lookback_s * 1000,
                max_entries=settings.sse_resume_max_entries,
            )
        ),
        pusher=Pusher(
            app,
            DeliveryReceipts(),
            interventions_topic=settings.interventions_topic,
            receipts_topic=topics.receipts_name,
            timeout_s=settings.push_receipt_timeout_ms / 1000,
        ),
        mirror=mirror,
        api_token=None if token is None else token.get_secret_value().encode(),
    )

    async def read_registry_log() -> None:  # the agents and /healthz wait for it
        await registry_log.run(create=True)

    # From the app's start, beside the group join: reads served early need the definitions.
    app.add_dependency(WithApp(read_registry_log))
    state.rows.restore_on_assignment(
        partial(
            restore_partitions,
            state.rows,
            bootstrap=settings.bootstrap_servers,
            auth=client_auth(settings),
            max_fetch_bytes=settings.consumer_max_fetch_size,
        )
    )
    dead_letters = register_dead_letter_sender(state)
    if settings.ingest_mode == "lean":
        register_lean_ingest(state, dead_letters)
    else:
        register_faust_ingest(state, dead_letters)
    register_stats_log(state)
    register_entities(state)
    register_serving_partitions(state)
    register_early_serving(state)
    register_interventions_tail(state)
    register_push_receipts(state)
    if mirror is not None:
        register_profiles_mirror(state, mirror)
    register_warehouse_sync(state)
    register_backfills(state)
    register_warehouse_backfills(state)

    register_attribute_views(state)
    register_event_log_views(state)
    register_entity_views(state)
    register_table_views(state)
    register_registry_views(state)
    register_sync_status_views(state)
    register_intervention_views(state)
    register_user_data_views(state)
    register_dataset_views(state)
    register_metrics_view(state)
    register_history_views(state)
    register_docs_views(state)
    register_catch_all_view(state)  # last: see the module docstring
    return state


@cache
def default_worker() -> WorkerState:
    """The worker of this process's environment (``SIGNALS_*``), built once.

    Raises:
        SystemExit: a setting or the definitions file is invalid (one line naming it).
    """
    try:
        return build_worker(load_settings())
    except (ConfigurationError, DefinitionError) as exc:  # one clear line, not a traceback
        raise SystemExit(f"signals-stream: {exc}") from None


def __getattr__(name: str) -> SignalsApp:
    # ``faust -A signals_stream.worker`` looks up ``app``: build it then, not at import.
    if name == "app":
        return default_worker().app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _pin_library_log_levels(settings: Settings) -> None:
    """Faust's worker spinner sets the root logger to DEBUG when the level is WARN or higher,
    which makes every per-message debug call in aiokafka build a log record."""
    for library in ("aiokafka", "faust", "mode"):
        logging.getLogger(library).setLevel(
            max(logging.INFO, logging.getLevelName(settings.log_level))
        )
    # Each short-lived consumer (a sync status read, a history window) logs its assignment
    # at INFO, which Faust draws as a table: several per second while a status is polled.
    logging.getLogger("aiokafka.consumer.subscription_state").setLevel(logging.WARNING)
