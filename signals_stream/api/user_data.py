"""``DELETE /api/v1/user-data/{key}/{id}``: delete everything stored for one identifier
(privacy requests), answered as the SDK's ``DeleteUserDataResponse{keys_found, message}``.

Served by the worker owning the id's partition (proxied there). It writes a deletion marker to
the id's entity-events partition (``routing/deletions.py``) and answers once the entities agent
has applied it: the row (every group and version's attributes, the intervention rules' fired
state, event-log buffers: all live in it) is deleted from RocksDB, with a changelog tombstone,
and from the Redis copy. What it cannot remove is in ``docs/api.md``.
"""

from __future__ import annotations

import asyncio
import uuid

from aiokafka.errors import KafkaError
from faust.exceptions import ProducerSendError
from faust.web import Request, Response

from signals_stream.api.base import WorkerView, add_page, requires_token
from signals_stream.api.owner import route_to_owner
from signals_stream.errors import NotFoundError, Unavailable
from signals_stream.kafka.partitioning import entity_partition
from signals_stream.routing import entity_row_key
from signals_stream.routing.deletions import DELETION_HEADER, encode_deletion
from signals_stream.serving.responses import api_errors
from signals_stream.worker_state import WorkerState

__all__ = ["UserDataView", "register_user_data_views"]

APPLY_TIMEOUT_S = 30.0
REDIS_TIMEOUT_S = 10.0


class UserDataView(WorkerView):
    @requires_token
    @api_errors
    async def delete(self, request: Request, key_name: str, entity_id: str) -> Response:
        state = self.state
        if state.registry.find("attribute_keys", key_name) is None:
            raise NotFoundError(f"attribute_key: no attribute key named {key_name!r}")
        entity = entity_id.encode()
        routed = await route_to_owner(state, entity, self.web, request, write=True)
        if routed is not None:
            return routed
        found = await _apply_deletion(state, key_name, entity)
        redis_done = state.mirror is None or await state.mirror.wait_sent(
            entity_row_key(key_name, entity), REDIS_TIMEOUT_S
        )
        message = (
            f"deleted the stored values of {key_name}={entity_id}"
            if found
            else f"nothing was stored for {key_name}={entity_id}"
        )
        if not redis_done:
            message += "; the Redis copy is queued for deletion (Redis did not answer)"
        return self.json({"keys_found": found, "message": message})


async def _apply_deletion(state: WorkerState, key_name: str, entity: bytes) -> bool:
    """Send the marker and wait for the entities agent to apply it; whether the row existed."""
    request_id = str(uuid.uuid4())
    partition = entity_partition(entity, state.settings.partitions)
    marker = encode_deletion(request_id, key_name, entity)
    with state.deletions.expecting(request_id) as applied:
        try:
            sent = await state.app.producer.send(
                state.topics.entity_events_name,
                None,
                marker,
                partition,
                None,
                [(DELETION_HEADER, b"1")],
            )
            await sent
        except (KafkaError, ProducerSendError) as exc:
            raise Unavailable(f"cannot write the entity-events topic: {exc}") from exc
        try:
            return await asyncio.wait_for(asyncio.shield(applied), APPLY_TIMEOUT_S)
        except TimeoutError as exc:
            # The marker is in the log and will be applied; only the answer is lost.
            raise Unavailable(
                "the deletion is queued but was not applied in time (partitions moving?); "
                "repeat the request to learn its outcome"
            ) from exc


def register_user_data_views(state: WorkerState) -> None:
    add_page(state, "/api/v1/user-data/{key_name}/{entity_id}", UserDataView)
