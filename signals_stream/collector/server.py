"""The collector's HTTP edge: the tracker protocol's endpoints on aiohttp, events to Kafka.

``POST /com.snowplowanalytics.snowplow/tp2`` (``payload_data`` 1-0-x, several events), ``GET /i``
(one event in the query), CORS preflight for both (the tracker's origin echoed, credentials
allowed, as Snowplow's Collector), ``GET /health``. Each event is mapped by
:mod:`signals_stream.collector.mapping` and produced to the input topic as enriched TSV (key:
the event id, a random UUID, as Enrich's default). An event the mapping refuses is dead-lettered
to the bad-events topic with its reason (``events.dead_letters``, source topic
``collector:<path>``) and the request is answered 400 naming it; the good events of the same
request are still produced.

The network user id is the ``sp`` cookie, set by the collector (a year, refreshed on each
request) unless the request carries ``SP-Anonymous``, as the Snowplow Collector does.
"""

from __future__ import annotations

import asyncio
import collections
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from signals_stream.collector.mapping import RequestContext, enriched_tsv, payload_events
from signals_stream.errors import BadEvent
from signals_stream.events.dead_letters import dead_letter_record

__all__ = [
    "COOKIE_NAME",
    "POST_PATH",
    "CollectorStats",
    "Send",
    "add_collector_routes",
]

POST_PATH = "/com.snowplowanalytics.snowplow/tp2"
GET_PATHS = ("/i", "/com.snowplowanalytics.snowplow/i")
COOKIE_NAME = "sp"
COOKIE_MAX_AGE_S = 365 * 24 * 3600
ANONYMOUS_NUID = "00000000-0000-0000-0000-000000000000"
V_COLLECTOR = "signals-stream-collector-0.1.0"
V_ETL = "signals-stream-0.1.0"
# A transparent 1x1 GIF: what /i answers, as Snowplow's Collector.
PIXEL = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)
MAX_BODY_BYTES = 1_000_000  # Enrich's default maxRecordSize
RECENT_DEAD_LETTERS = 20

# (topic, key, value) -> once the broker acknowledged it.
Send = Callable[[str, bytes | None, bytes], Awaitable[None]]


@dataclass(slots=True)
class CollectorStats:
    """Counters the console shows (plain numbers, read at request time)."""

    good: int = 0
    bad: int = 0
    bad_by_reason: collections.Counter[str] = field(default_factory=collections.Counter)
    recent_bad: collections.deque[dict[str, Any]] = field(
        default_factory=lambda: collections.deque(maxlen=RECENT_DEAD_LETTERS)
    )

    def as_json(self) -> dict[str, Any]:
        return {
            "good": self.good,
            "bad": self.bad,
            "bad_by_reason": dict(self.bad_by_reason),
            "recent_bad": list(self.recent_bad),
        }


def add_collector_routes(
    app: web.Application,
    send: Send,
    *,
    input_topic: str,
    bad_topic: str,
    stats: CollectorStats,
) -> None:
    """Add the collector's routes to ``app``."""
    collector = _Collector(send, input_topic, bad_topic, stats)
    app.router.add_post(POST_PATH, collector.post)
    app.router.add_route("OPTIONS", POST_PATH, collector.preflight)
    for path in GET_PATHS:
        app.router.add_get(path, collector.pixel)
        app.router.add_route("OPTIONS", path, collector.preflight)
    app.router.add_get("/health", _health)


async def _health(request: web.Request) -> web.Response:
    return web.Response(text="OK")


class _Collector:
    def __init__(self, send: Send, input_topic: str, bad_topic: str, stats: CollectorStats):
        self._send = send
        self._input_topic = input_topic
        self._bad_topic = bad_topic
        self._stats = stats

    async def preflight(self, request: web.Request) -> web.Response:
        response = web.Response(status=200)
        _cors(request, response)
        response.headers["Access-Control-Allow-Methods"] = "POST, GET, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = request.headers.get(
            "Access-Control-Request-Headers", "Content-Type, SP-Anonymous"
        )
        response.headers["Access-Control-Max-Age"] = "3600"
        return response

    async def post(self, request: web.Request) -> web.Response:
        body = await _read_body(request)
        nuid, new_cookie = _network_userid(request)
        try:
            if len(body) > MAX_BODY_BYTES:
                raise BadEvent("PayloadTooLarge", f"over {MAX_BODY_BYTES} bytes")
            events = payload_events(body)
        except BadEvent as error:
            await self._dead_letter(request.path, body, error)
            return self._answer(request, _bad_answer([(None, error)]), nuid, new_cookie)
        problems = await self._collect(request, events, nuid)
        answer = _bad_answer(problems) if problems else web.Response(text="ok")
        return self._answer(request, answer, nuid, new_cookie)

    async def pixel(self, request: web.Request) -> web.Response:
        nuid, new_cookie = _network_userid(request)
        params = dict(request.query)
        problems = await self._collect(request, [params], nuid)
        answer = (
            _bad_answer(problems)
            if problems
            else web.Response(body=PIXEL, content_type="image/gif")
        )
        return self._answer(request, answer, nuid, new_cookie)

    async def _collect(
        self, request: web.Request, events: Iterable[Mapping[str, Any]], nuid: str | None
    ) -> list[tuple[int | None, BadEvent]]:
        received = datetime.now(UTC)
        lines: list[tuple[bytes, bytes]] = []
        problems: list[tuple[int | None, BadEvent]] = []
        for index, params in enumerate(events):
            context = RequestContext(
                collector_tstamp=received,
                etl_tstamp=datetime.now(UTC),
                network_userid=nuid,
                useragent=request.headers.get("User-Agent"),
                ip_address=_client_ip(request),
                v_collector=V_COLLECTOR,
                v_etl=V_ETL,
                new_event_id=str(uuid.uuid4()),
            )
            try:
                line = enriched_tsv(params, context)
            except BadEvent as error:
                problems.append((index, error))
                await self._dead_letter(request.path, _params_bytes(params), error)
                continue
            event_id = line.split("\t", 7)[6]
            lines.append((event_id.encode(), line.encode("utf-8")))
        await asyncio.gather(*(self._send(self._input_topic, k, v) for k, v in lines))
        self._stats.good += len(lines)
        return problems

    async def _dead_letter(self, path: str, raw: bytes, error: BadEvent) -> None:
        letter = dead_letter_record(
            raw,
            error,
            topic=f"collector:{path}",
            partition=-1,
            offset=-1,
            key=None,
            failed_at_ms=int(time.time() * 1000),
        )
        await self._send(self._bad_topic, None, letter)
        self._stats.bad += 1
        self._stats.bad_by_reason[error.reason] += 1
        self._stats.recent_bad.append(
            {"reason": error.reason, "detail": error.detail[:200], "at_ms": int(time.time() * 1000)}
        )

    def _answer(
        self, request: web.Request, response: web.Response, nuid: str | None, new_cookie: bool
    ) -> web.Response:
        _cors(request, response)
        if nuid is not None and nuid != ANONYMOUS_NUID:
            secure = request.secure
            response.set_cookie(
                COOKIE_NAME,
                nuid,
                max_age=COOKIE_MAX_AGE_S,
                path="/",
                httponly=True,
                # A third-party collector needs SameSite=None, which browsers take only over
                # HTTPS; the dev stack serves the demo from the collector's own origin.
                samesite="None" if secure else "Lax",
                secure=secure,
            )
        return response


async def _read_body(request: web.Request) -> bytes:
    """The body, or its first ``MAX_BODY_BYTES + 1`` bytes when it is longer (then refused)."""
    body = bytearray()
    async for chunk in request.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            break
    return bytes(body)


def _params_bytes(params: Mapping[str, Any]) -> bytes:
    """The refused event as JSON for its dead letter (ASCII escapes keep even lone surrogates)."""
    return json.dumps(dict(params), ensure_ascii=True, default=str).encode()


def _bad_answer(problems: list[tuple[int | None, BadEvent]]) -> web.Response:
    body = {
        "error": "bad_request",
        "message": "; ".join(error.reason for _, error in problems),
        "bad_events": [
            {"index": index, "reason": error.reason, "detail": error.detail[:200]}
            for index, error in problems
        ],
    }
    return web.Response(status=400, body=orjson.dumps(body), content_type="application/json")


def _cors(request: web.Request, response: web.StreamResponse) -> None:
    origin = request.headers.get("Origin")
    response.headers["Access-Control-Allow-Origin"] = origin or "*"
    if origin:
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Vary"] = "Origin"


def _network_userid(request: web.Request) -> tuple[str | None, bool]:
    """The ``sp`` cookie's id (a new one if absent), or the anonymous id."""
    if "SP-Anonymous" in request.headers:
        return ANONYMOUS_NUID, False
    cookie = request.cookies.get(COOKIE_NAME)
    if cookie:
        return cookie, False
    return str(uuid.uuid4()), True


def _client_ip(request: web.Request) -> str | None:
    forwarded = request.headers.get("X-Forwarded-For")
    if forwarded:
        return forwarded.split(",", 1)[0].strip() or None
    return request.remote
