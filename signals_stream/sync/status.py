"""A warehouse group's sync status, and its answer in the SDK's ``BatchSyncStatusResponse``
shape (``GET /api/v1/registry/attribute_groups/{name}/versions/{v}/sync_status``). Pure.

The SDK (0.4.10) has the model and no client call for it (the Console reads it), so the path
is ours; the body carries the model's fields, then ours (run start and end, rows, watermark,
next run, last error), which the SDK's model ignores when it parses the body.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, fields
from typing import Any

from signals_stream.definitions import AttributeGroup
from signals_stream.definitions.durations import duration_ms
from signals_stream.warehouse.sql import Watermark

__all__ = ["SyncStatus", "first_since_ms", "status_body"]


@dataclass
class SyncStatus:
    """One group version's sync: where it stands and how its last run went."""

    group: str  # "<name>:<version>"
    watermark_ms: int | None = None
    watermark_id: str | None = None
    last_started_ms: int | None = None
    last_finished_ms: int | None = None
    last_succeeded_ms: int | None = None  # the end of the last run without an error
    next_run_ms: int | None = None
    rows_read: int = 0  # by the last run
    rows_sent: int = 0  # by the last run: sent to the rows' owners and acknowledged
    total_rows_sent: int = 0
    runs: int = 0  # runs started, by any runner
    failed_runs: int = 0
    last_error: str | None = None
    running: bool = False

    @property
    def watermark(self) -> Watermark | None:
        if self.watermark_ms is None or self.watermark_id is None:
            return None
        return Watermark(self.watermark_ms, self.watermark_id)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> SyncStatus:
        """A status as written by any version (fields it lacks take their defaults)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in body.items() if k in known})


def first_since_ms(group: AttributeGroup, now_ms: int) -> int:
    """Where a group's first run starts: ``backfill_since_tstamp``, else now minus its TTL
    (older values would read as expired)."""
    if group.backfill_since_tstamp is not None:
        return int(group.backfill_since_tstamp.timestamp() * 1000)
    return now_ms - duration_ms(group.warehouse_ttl)


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat().replace("+00:00", "Z")


def _state(status: SyncStatus | None) -> str:
    if status is None or status.running or status.runs == 0:
        return "running"  # the model's word for "not synced yet" too
    return "failed" if status.last_error else "completed"


def status_body(group: AttributeGroup, status: SyncStatus | None, now_ms: int) -> dict[str, Any]:
    """``BatchSyncStatusResponse`` for ``group`` (``status`` None: it never ran), then the
    run's details. ``sync_progress`` counts days of the window from the first run's start to
    now: synced up to the watermark (all of it after a completed run), failed after it when
    the last run failed."""
    source = group.batch_source
    assert source is not None  # an external batch group always has one
    current = status or SyncStatus(f"{group.name}:{group.version}")
    state = _state(status)
    day = 86_400_000
    start = first_since_ms(group, now_ms)
    total = max(1, -(-(now_ms - start) // day))
    if state == "completed":
        synced = total
    elif current.watermark_ms is None:
        synced = 0
    else:
        synced = min(total, max(0, (current.watermark_ms - start) // day))
    failed = total - synced if state == "failed" else 0
    errors = []
    if state == "failed" and current.last_error:
        errors.append(
            {
                "interval_start": _iso(current.watermark_ms or start),
                "interval_end": _iso(current.last_started_ms or now_ms),
                "message": current.last_error,
            }
        )
    table = ".".join(p for p in (source.database, source.schema_, source.table) if p)
    return {
        "status": state,
        "streaming_since": None,  # a warehouse group does not stream
        "last_synced_at": _iso(current.last_succeeded_ms),
        "sync_started_at": _iso(current.last_started_ms) if current.running else None,
        "data_fresh_through": _iso(current.watermark_ms),
        "source_table": table,
        "sync_progress": {"days_synced": synced, "days_failed": failed, "days_total": total},
        "records_synced": current.total_rows_sent if current.runs else None,
        "errors": errors,
        # Ours: the last run and the next.
        "group": current.group,
        "running": current.running,
        "last_run_started_at": _iso(current.last_started_ms),
        "last_run_finished_at": _iso(current.last_finished_ms),
        "rows_read": current.rows_read,
        "rows_sent": current.rows_sent,
        "runs": current.runs,
        "failed_runs": current.failed_runs,
        "watermark": None
        if current.watermark is None
        else {"timestamp": _iso(current.watermark_ms), "id": current.watermark_id},
        "next_run_at": _iso(current.next_run_ms if status is not None else now_ms),
        "last_error": current.last_error,
    }
