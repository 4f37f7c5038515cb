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
(``agents/intervention_push.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import orjson
from aiohttp import web as aiohttp_web
from aiokafka.errors import KafkaError
from faust.exceptions import ProducerSendError
from faust.web import Request, Response, View

from agents.intervention_push import push
from agents.interventions_tail import hub
from signals_stream.app import app
from signals_stream.delivery.hub import TooManySubscribers
from signals_stream.delivery.push import TooManyTargets, push_instances, push_targets
from signals_stream.errors import DefinitionError
from signals_stream.serving.auth import requires_token

__all__ = ["InterventionsStream", "KEEPALIVE_S"]

KEEPALIVE_S = 15.0


_NO_TARGET = "name at least one target: ?domain_userid=<id>"


@app.page("/api/v1/interventions")
class InterventionsStream(View):
    @requires_token
    async def post(self, request: Request) -> Response:
        try:
            targets = push_targets((str(k), str(v)) for k, v in request.query.items())
        except TooManyTargets as exc:
            return self.json({"error": "bad_request", "detail": str(exc)}, status=400)
        if not targets:
            return self.json({"error": "bad_request", "detail": _NO_TARGET}, status=400)
        try:
            instances = push_instances(
                await request.read(),
                targets,
                intervention_id=str(uuid.uuid4()),
                now_ms=int(time.time() * 1000),
            )
        except DefinitionError as exc:
            return self.json({"error": "invalid_intervention", "detail": str(exc)}, status=422)
        try:
            delivered = await push(instances)
        except (KafkaError, ProducerSendError) as exc:
            detail = f"cannot write the interventions topic: {exc}"
            return self.json({"error": "unavailable", "detail": detail}, status=503)
        return self.json({"status": "success" if delivered else "undelivered"})

    async def get(self, request: Request) -> Response:
        targets = [(str(k), str(v)) for k, v in request.query.items() if v]
        if not targets:
            return self.json({"error": "bad_request", "detail": _NO_TARGET}, status=400)
        try:
            subscription = hub.subscribe(targets)
        except TooManySubscribers as exc:
            return self.json({"error": "unavailable", "detail": str(exc)}, status=503)
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


async def _end_streams(_: object) -> None:
    hub.close()


# aiohttp runs on_shutdown before it waits for open handlers: ending the streams there lets a
# worker with connected subscribers stop at once instead of after the shutdown timeout.
app.web.web_app.on_shutdown.append(_end_streams)
