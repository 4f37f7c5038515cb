"""``/api/v1/interventions?<key>=<id>&...``: subscribe (GET, Server-Sent Events) and push (POST).

GET, as the Signals clients expect: headers flushed at once (the browser plugin gives up after
2.5 s), one ``data: <json>`` frame per intervention and no ``event:`` name (browsers listen for
``message``), a ``: ping`` comment every 15 s (Python clients only notice ``stop()`` when a
line arrives), CORS open for browser ``EventSource``s. No authentication: knowing an attribute
key id grants its interventions, as in Signals, so ids must be unguessable (UUIDs).

Resumable: every frame carries an ``id:``, the stream's position in the interventions topic
(``delivery/resume.py``), sent at connect and on every ping too. A client that reconnects with
``Last-Event-ID`` (a browser's ``EventSource`` does it by itself) is first sent every
intervention for its targets that it has not been shown, from the worker's recent buffer
(``SIGNALS_SSE_RESUME_LOOKBACK_S``, ``SIGNALS_SSE_RESUME_MAX_ENTRIES``), whichever worker it
reconnects to. When part of what it missed is older than that buffer, a ``: resume-incomplete``
comment says so. Frames are never sent twice to a stream that resumes.

POST (the SDK's ``push_intervention``, bearer token required): the body is an
``InterventionInstance``; it goes to every target in the query through the interventions topic,
so subscribers on any worker get it. ``{"status": "success"}`` once a subscriber received it,
``{"status": "undelivered"}`` when none did within ``SIGNALS_PUSH_RECEIPT_TIMEOUT_MS``
(``delivery/pusher.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import cast

from aiohttp import web as aiohttp_web
from aiokafka.errors import KafkaError
from faust.exceptions import ProducerSendError
from faust.web import Request, Response
from faust.web.drivers.aiohttp import Web as AiohttpWeb

from signals_stream.api.base import WorkerView, add_page, requires_token
from signals_stream.delivery.hub import Hub, Subscription, TooManySubscribers
from signals_stream.delivery.push import push_instances, push_targets
from signals_stream.delivery.recent import Recorded
from signals_stream.delivery.resume import format_position, parse_position
from signals_stream.errors import BadRequest, DefinitionError, InvalidIntervention, Unavailable
from signals_stream.kafka.partitioning import entity_partition
from signals_stream.serving.responses import answer_error, api_errors
from signals_stream.worker_state import WorkerState

__all__ = ["KEEPALIVE_S", "InterventionsStream", "register_intervention_views"]

KEEPALIVE_S = 15.0
TAIL_READY_TIMEOUT_S = 10.0


_NO_TARGET = "name at least one target: ?domain_userid=<id>"


class InterventionsStream(WorkerView):
    @requires_token
    @api_errors
    async def post(self, request: Request) -> Response:
        targets = push_targets((str(k), str(v)) for k, v in request.query.items())
        if not targets:
            raise BadRequest(_NO_TARGET)
        try:
            instances = push_instances(
                await request.read(),
                targets,
                intervention_id=str(uuid.uuid4()),
                now_ms=int(time.time() * 1000),
            )
        except DefinitionError as exc:
            raise InvalidIntervention(str(exc)) from exc
        try:
            delivered = await self.state.pusher.push(instances)
        except (KafkaError, ProducerSendError) as exc:
            raise Unavailable(f"cannot write the interventions topic: {exc}") from exc
        return self.json({"status": "success" if delivered else "undelivered"})

    async def get(self, request: Request) -> Response:
        # Not ``api_errors``: past ``prepare()`` an error answer would corrupt the stream.
        targets = [(str(k), str(v)) for k, v in request.query.items() if v]
        if not targets:
            return answer_error(self, BadRequest(_NO_TARGET))
        hub = self.state.hub
        try:
            await asyncio.wait_for(hub.ready.wait(), TAIL_READY_TIMEOUT_S)
            subscription = hub.subscribe(targets)
        except TimeoutError:
            return answer_error(self, Unavailable("the interventions tail is not reading yet"))
        except TooManySubscribers as exc:
            return answer_error(self, exc)
        # Noted in the same step as the subscription: no record falls between the two.
        stream = _StreamPosition(hub, subscription, request.headers.get("Last-Event-ID", ""))
        response = aiohttp_web.StreamResponse(
            status=200,
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "Access-Control-Allow-Origin": "*",
                "X-Accel-Buffering": "no",
            },
        )
        try:
            await response.prepare(request)  # type: ignore[arg-type]
            await response.write(stream.opening())
            for record in stream.missed:
                await response.write(stream.frame(record))
            while True:
                try:
                    live = await asyncio.wait_for(subscription.queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    await response.write(stream.ping())
                    continue
                if live is None:  # dropped: too slow to keep up
                    break
                if stream.is_new(live):
                    await response.write(stream.frame(live))
        except (ConnectionResetError, ConnectionError):
            pass
        finally:
            hub.unsubscribe(subscription)
            with contextlib.suppress(Exception):
                await response.write_eof()
        return response  # type: ignore[return-value]


class _StreamPosition:
    """One stream's position (the ``id`` of its frames) and what it missed while away."""

    def __init__(self, hub: Hub, subscription: Subscription, last_event_id: str) -> None:
        self._hub = hub
        partitions = {entity_partition(i.encode(), hub.partitions) for _, i in subscription.targets}
        start = {p: subscription.start.get(p, 0) for p in partitions}
        last = parse_position(last_event_id) if last_event_id else None
        self.resumed = last is not None
        self.complete = True
        self.missed: list[Recorded] = []
        self._position = dict(start)
        if last is not None:
            since = {p: last[p] for p in partitions if p in last}
            self.missed, self.complete = hub.recent.missed(subscription.targets, since, start)
            self._position.update(since)
        # Once the missed records are sent, all below ``start`` is shown (and more, where the
        # client came from a worker whose tail was ahead: that is not shown again).
        self._caught_up = {p: max(o, start[p]) for p, o in self._position.items()}
        self._to_catch_up = len(self.missed)
        if not self.missed:
            self._position = dict(self._caught_up)

    def opening(self) -> bytes:
        head = b": connected\n"
        if self.resumed and not self.complete:
            head += b": resume-incomplete: some interventions were older than the look-back\n"
        return head + self._id_line()

    def is_new(self, record: Recorded) -> bool:
        return record.offset >= self._position.get(record.partition, 0)

    def frame(self, record: Recorded) -> bytes:
        self._position[record.partition] = record.offset + 1
        if self._to_catch_up:
            self._to_catch_up -= 1
            if not self._to_catch_up:
                self._position = dict(self._caught_up)
        return self._id_line()[:-1] + b"data: " + record.value + b"\n\n"

    def ping(self) -> bytes:
        # The queue is empty: every record the tail has read for these targets was sent.
        for partition in self._position:
            self._position[partition] = max(
                self._position[partition], self._hub.positions.get(partition, 0)
            )
        return b": ping\n" + self._id_line()

    def _id_line(self) -> bytes:
        return b"id: " + format_position(self._position).encode() + b"\n\n"


def register_intervention_views(state: WorkerState) -> None:
    add_page(state, "/api/v1/interventions", InterventionsStream)

    async def end_streams(_: object) -> None:
        state.hub.close()

    # aiohttp runs on_shutdown before it waits for open handlers: ending the streams there lets
    # a worker with connected subscribers stop at once instead of after the shutdown timeout.
    web = cast(AiohttpWeb, state.app.web)
    web.web_app.on_shutdown.append(end_streams)
