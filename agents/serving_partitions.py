"""Which entity partitions this worker serves reads from (``WorkerState.serving_partitions``).

A partition leaves the set when Faust revokes it, before anything else moves, and the set is
the active assignment again once the tables are recovered (``on_rebalance_complete``). In
between, reads of those partitions answer 503 with ``Retry-After``: a worker that lost a
partition, or is still restoring one, keeps a local copy that may be behind the new owner's.
"""

from __future__ import annotations

from typing import Any

from signals_stream.worker_state import WorkerState

__all__ = ["register_serving_partitions"]


def register_serving_partitions(state: WorkerState) -> None:
    app = state.app
    entity_events = state.topics.entity_events_name

    async def revoked(sender: Any, *args: Any, **kwargs: Any) -> None:
        gone = args[0] if args else kwargs["revoked"]  # sent positionally
        state.serving_partitions.difference_update(
            tp.partition for tp in gone if tp.topic == entity_events
        )

    async def rebalanced(sender: Any, *args: Any, **kwargs: Any) -> None:
        state.serving_partitions.clear()
        state.serving_partitions.update(state.entity_partitions())

    app.on_partitions_revoked.connect(revoked)  # type: ignore[arg-type]
    app.on_rebalance_complete.connect(rebalanced)  # type: ignore[arg-type]
