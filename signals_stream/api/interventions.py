"""``GET /api/v1/interventions?<key>=<id>&...``: interventions as Server-Sent Events.

As the Signals clients expect: headers flushed at once (the browser plugin gives up after
2.5 s), one ``data: <json>`` frame per intervention and no ``event:`` name (browsers listen for
``message``), a ``: ping`` comment every 15 s (Python clients only notice ``stop()`` when a
line arrives), CORS open for browser ``EventSource``s. No authentication: knowing an attribute
key id grants its interventions, as in Signals, so ids must be unguessable (UUIDs).
"""

from __future__ import annotations

import asyncio
import contextlib

import orjson
from aiohttp import web as aiohttp_web
from faust.web import Request, Response, View

from agents.interventions_tail import hub
from signals_stream.app import app
from signals_stream.interventions.hub import TooManySubscribers

__all__ = ["InterventionsStream", "KEEPALIVE_S"]

KEEPALIVE_S = 15.0


@app.page("/api/v1/interventions")
class InterventionsStream(View):
    async def get(self, request: Request) -> Response:
        targets = [(str(k), str(v)) for k, v in request.query.items() if v]
        if not targets:
            return self.json(
                {"error": "bad_request", "detail": "name at least one target: ?domain_userid=<id>"},
                status=400,
            )
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
