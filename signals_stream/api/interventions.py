"""``/api/v1/interventions?<key>=<id>&...``: subscribe (GET, Server-Sent Events) and push (POST).

GET, as the Signals clients expect: headers flushed at once (the browser plugin gives up after
2.5 s), one ``data: <json>`` frame per intervention and no ``event:`` name (browsers listen for
``message``), a ``: ping`` comment every 15 s (Python clients only notice ``stop()`` when a
line arrives), CORS open for browser ``EventSource``s. No authentication: knowing an attribute
key id grants its interventions, as in Signals, so ids must be unguessable (UUIDs).

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

import orjson
from aiohttp import web as aiohttp_web
from aiokafka.errors import KafkaError
from faust.exceptions import ProducerSendError
from faust.web import Request, Response
from faust.web.drivers.aiohttp import Web as AiohttpWeb

from signals_stream.api.base import WorkerView, add_page, requires_token
from signals_stream.delivery.hub import TooManySubscribers
from signals_stream.delivery.push import push_instances, push_targets
from signals_stream.errors import BadRequest, DefinitionError, InvalidIntervention, Unavailable
from signals_stream.serving.responses import answer_error, api_errors
from signals_stream.worker_state import WorkerState

__all__ = ["KEEPALIVE_S", "InterventionsStream", "register_intervention_views"]

KEEPALIVE_S = 15.0


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
            subscription = hub.subscribe(targets)
        except TooManySubscribers as exc:
            return answer_error(self, exc)
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
            await response.write(b": connected\n\n")
            while True:
                try:
                    instance = await asyncio.wait_for(subscription.queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    await response.write(b": ping\n\n")
                    continue
                if instance is None:  # dropped: too slow to keep up
                    break
                await response.write(b"data: " + orjson.dumps(instance) + b"\n\n")
        except (ConnectionResetError, ConnectionError):
            pass
        finally:
            hub.unsubscribe(subscription)
            with contextlib.suppress(Exception):
                await response.write_eof()
        return response  # type: ignore[return-value]


def register_intervention_views(state: WorkerState) -> None:
    add_page(state, "/api/v1/interventions", InterventionsStream)

    async def end_streams(_: object) -> None:
        state.hub.close()

    # aiohttp runs on_shutdown before it waits for open handlers: ending the streams there lets
    # a worker with connected subscribers stop at once instead of after the shutdown timeout.
    web = cast(AiohttpWeb, state.app.web)
    web.web_app.on_shutdown.append(end_streams)
