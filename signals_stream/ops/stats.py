"""Counters of what the stream did, kept in-process (logged, and exported on /metrics)."""

from __future__ import annotations

from collections import Counter

__all__ = ["IngestStats"]


class IngestStats:
    """Good and bad input records (bad ones by reason), events forwarded to entities, and
    events applied to (or skipped as replays by) entity rows on this worker."""

    __slots__ = (
        "applied",
        "backfill_applied",
        "backfill_dropped",
        "backfill_live",
        "backfill_received",
        "backfill_replays",
        "bad",
        "warehouse_backfill_bad_records",
        "warehouse_backfill_dropped",
        "warehouse_backfill_merged",
        "warehouse_backfill_replays",
        "dead_letter_send_failures",
        "dead_letters_pending",
        "duplicates_dropped",
        "entity_batches",
        "entity_events_received",
        "entity_records_held",
        "forwarded",
        "good",
        "input_batches",
        "interventions",
        "replays_skipped",
        "rows_deleted",
        "rows_written",
        "sync_bad_records",
        "synced_applied",
    )

    def __init__(self) -> None:
        self.good = 0
        self.forwarded = 0
        self.applied = 0
        self.replays_skipped = 0
        self.duplicates_dropped = 0
        self.input_batches = 0
        self.interventions = 0
        self.entity_batches = 0
        self.entity_events_received = 0
        # entity-events records held back past a hole (agents/entity_offsets.py)
        self.entity_records_held = 0
        self.rows_written = 0
        self.rows_deleted = 0  # by delete-user requests
        self.synced_applied = 0  # warehouse values written into entity rows (#16)
        self.sync_bad_records = 0  # sync records that could not be read (logged)
        # The backfill road's events (#15): received, folded, skipped as replays of the road,
        # skipped because the live road has them, dropped (backfill gone or cancelled).
        self.backfill_received = 0
        self.backfill_applied = 0
        self.backfill_replays = 0
        self.backfill_live = 0
        self.backfill_dropped = 0
        # Warehouse states of backfills (agents/warehouse_backfill): rows merged, resent ones
        # skipped, dropped (backfill gone or cancelled), undecodable records.
        self.warehouse_backfill_merged = 0
        self.warehouse_backfill_replays = 0
        self.warehouse_backfill_dropped = 0
        self.warehouse_backfill_bad_records = 0
        self.bad: Counter[str] = Counter()
        # Dead letters the bad-events topic did not take (each failed attempt), and those
        # waiting for a retry now: the input commit is held before the first of them.
        self.dead_letter_send_failures = 0
        self.dead_letters_pending = 0

    def summary(self) -> str:
        bad = ", ".join(f"{reason}={n}" for reason, n in sorted(self.bad.items())) or "none"
        return (
            f"good={self.good} bad={sum(self.bad.values())} ({bad}) "
            f"forwarded={self.forwarded} applied={self.applied} "
            f"replays_skipped={self.replays_skipped}"
        )

    def to_json(self) -> dict[str, object]:
        return {
            "good": self.good,
            "bad": dict(self.bad),
            "forwarded": self.forwarded,
            "applied": self.applied,
            "replays_skipped": self.replays_skipped,
            "duplicates_dropped": self.duplicates_dropped,
            "input_batches": self.input_batches,
            "interventions": self.interventions,
            "entity_batches": self.entity_batches,
            "entity_events_received": self.entity_events_received,
            "entity_records_held": self.entity_records_held,
            "rows_written": self.rows_written,
            "rows_deleted": self.rows_deleted,
            "dead_letter_send_failures": self.dead_letter_send_failures,
            "dead_letters_pending": self.dead_letters_pending,
            "synced_applied": self.synced_applied,
            "sync_bad_records": self.sync_bad_records,
            "backfill_received": self.backfill_received,
            "backfill_applied": self.backfill_applied,
            "backfill_replays": self.backfill_replays,
            "backfill_live": self.backfill_live,
            "backfill_dropped": self.backfill_dropped,
            "warehouse_backfill_merged": self.warehouse_backfill_merged,
            "warehouse_backfill_replays": self.warehouse_backfill_replays,
            "warehouse_backfill_dropped": self.warehouse_backfill_dropped,
            "warehouse_backfill_bad_records": self.warehouse_backfill_bad_records,
        }
