"""What one worker holds while it runs, built once by the composition root.

Agents and views receive this object; nothing here is a module-level global, so two workers
can be built in one process (the in-process tests do) and nothing depends on import order.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from faust.tables.manager import TableManager
from faust.types import TableT

from signals_stream.app import Topics
from signals_stream.delivery.hub import Hub
from signals_stream.delivery.pusher import Pusher
from signals_stream.engine.installed import LiveCatalog
from signals_stream.errors import OwnerUnavailable
from signals_stream.history.backfill_state import BackfillProgress
from signals_stream.history.warehouse_backfill_state import WarehousePart
from signals_stream.kafka.registry_log import RegistryLog
from signals_stream.kafka.transport import SignalsApp
from signals_stream.ops.latency import BatchHistogram
from signals_stream.ops.stats import IngestStats
from signals_stream.profiles import RowMirror
from signals_stream.registry import Registry
from signals_stream.serving.deletions import DeletionRequests
from signals_stream.settings import Settings
from signals_stream.sync.state import SyncStatus
from tables.local_copies import LocalCopies
from tables.row_store import RowStore

if TYPE_CHECKING:
    from signals_stream.datasets.runs import DatasetRuns

__all__ = ["InputLag", "WorkerState"]

InputLag = Callable[[], Awaitable[dict[tuple[str, int], int]]]


async def _no_input_lag() -> dict[tuple[str, int], int]:
    return {}


@dataclass(eq=False)
class WorkerState:
    """One worker's parts: its app and tables, the live definitions, counters and delivery."""

    settings: Settings
    app: SignalsApp
    topics: Topics
    entity_rows: TableT
    rows: RowStore  # the only way to entity rows (the storage seam)
    registry_log: RegistryLog  # the registry, its live catalog, and their log
    hub: Hub  # local SSE subscribers
    pusher: Pusher  # direct pushes and their receipts
    mirror: RowMirror | None  # the Redis profiles store, with SIGNALS_REDIS_URL
    api_token: bytes | None
    stats: IngestStats = field(default_factory=IngestStats)
    # Event time (derived_tstamp, else collector_tstamp) -> the ingest stage routed the event.
    event_to_processed: BatchHistogram = field(default_factory=BatchHistogram)
    # Routed by the ingest stage -> its entity row is written (readable on /tables, /entities).
    processed_to_visible: BatchHistogram = field(default_factory=BatchHistogram)
    rows_swept: int = 0
    # Entity partitions whose rows this worker may serve: assigned and recovered. Emptied of a
    # partition the moment it is revoked, so a read never answers from a stale local copy.
    serving_partitions: set[int] = field(default_factory=set)
    # Partitions served from the previous run's databases while the first join is pending,
    # unchanged since a clean stop (agents/early_serving); None once the first rebalance is done.
    early: LocalCopies | None = None
    deletions: DeletionRequests = field(default_factory=DeletionRequests)  # delete-user requests
    # Lag of the input partitions read by the lean ingest consumer (set when it runs).
    input_lag: InputLag = _no_input_lag
    # Warehouse groups this worker runs the sync of, by "<group>:<version>" (agents/warehouse_sync).
    sync_statuses: dict[str, SyncStatus] = field(default_factory=dict)
    # Backfill tasks this worker runs or ran, and cancelled backfills (agents/backfill).
    backfills: BackfillProgress = field(default_factory=BackfillProgress)
    # Warehouse parts of backfills this worker coordinates (agents/warehouse_backfill).
    warehouse_backfills: dict[str, WarehousePart] = field(default_factory=dict)
    # Dataset runs (api/datasets): this worker's, and every run's record in the run log.
    dataset_runs: DatasetRuns | None = None

    @property
    def registry(self) -> Registry:
        return self.registry_log.registry

    @property
    def live(self) -> LiveCatalog:
        return self.registry_log.live

    def tables_recovered(self) -> bool:
        """Whether the tables are recovered."""
        return cast(TableManager, self.app.tables).recovery.completed.is_set()

    def ready(self) -> bool:
        """Ready to serve: tables recovered and the registry log read to its end."""
        return self.registry_log.ready.is_set() and self.tables_recovered()

    def served_row(self, partition: int, row_key: bytes) -> bytes | None:
        """The row under ``row_key`` for a reader, if this worker serves its partition.

        Raises:
            OwnerUnavailable: the partition is moving to or away from this worker (503).
        """
        if partition in self.serving_partitions:
            return self.rows.lookup(partition, row_key)
        if self.serves_early(partition):
            assert self.early is not None
            return self.early.get(partition, row_key)
        raise OwnerUnavailable(f"partition {partition} is moving; retry shortly")

    def serves_early(self, partition: int) -> bool:
        """Whether ``partition`` is served from the previous run's copy (the join pending)."""
        return self.early is not None and partition in self.early

    def entity_partitions(self) -> set[int]:
        """The entity partitions this worker is assigned now (active)."""
        name = self.topics.entity_events_name
        return {tp.partition for tp in self.app.consumer.assignment() if tp.topic == name}
