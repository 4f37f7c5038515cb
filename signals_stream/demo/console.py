"""The live console at ``/console/`` (bearer token): definitions, entity lookup, interventions,
stream health.

Server-rendered HTML (the published definitions with their versions, read from the worker's
registry API) plus a little JS (``static/console.js``) that polls two JSON endpoints and listens
to one SSE stream, all under ``/console/api/``:

* ``entity?key=&id=``: the entity's attributes in every published group of that key (the
  worker's ``/tables/{group}/{id}``);
* ``health``: the worker's ``/stats`` and consumer lag (``/metrics``), the collector's counters,
  bad events by reason and the recent dead letters (read from the bad-events topic);
* ``interventions``: SSE of every intervention (a tail of the interventions topic from its
  end; the last ones are sent first).

The token is the API's (``SIGNALS_API_TOKEN``): an ``Authorization: Bearer`` header, or
``/console/?token=...`` once, which sets an HttpOnly cookie (the URL ``signals-stream dev``
prints).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hmac
import html
import string
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
from aiohttp import web

from signals_stream.collector.server import CollectorStats

__all__ = ["ConsoleFeeds", "add_console_routes"]

_HERE = Path(__file__).parent
COOKIE = "signals_console"
RECENT = 50
_REGISTRY_KINDS = ("attribute_groups", "interventions", "services", "event_logs")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ConsoleFeeds:
    """What the console reads from Kafka: the last interventions (and live subscribers) and
    the dead letters (counts by reason, the last ones)."""

    def __init__(self) -> None:
        self.interventions: collections.deque[dict[str, Any]] = collections.deque(maxlen=RECENT)
        self.subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self.bad_by_reason: collections.Counter[str] = collections.Counter()
        self.recent_bad: collections.deque[dict[str, Any]] = collections.deque(maxlen=20)

    def add_intervention(self, instance: dict[str, Any]) -> None:
        self.interventions.append(instance)
        for queue in self.subscribers:
            queue.put_nowait(instance)

    def add_dead_letter(self, letter: dict[str, Any]) -> None:
        reason = str(letter.get("reason"))
        self.bad_by_reason[reason] += 1
        source = letter.get("source") or {}
        self.recent_bad.append(
            {
                "reason": reason,
                "detail": str(letter.get("detail", ""))[:200],
                "source": source.get("topic") if isinstance(source, dict) else None,
                "failed_at_ms": letter.get("failed_at_ms"),
            }
        )


async def tail_feeds(
    feeds: ConsoleFeeds, bootstrap: list[str], interventions_topic: str, bad_topic: str, auth: Any
) -> None:
    """Fill ``feeds`` until cancelled: interventions from the topic's end, dead letters from
    its beginning."""
    from signals_stream.kafka.topics import tail_consumer

    async def follow(
        topic: str, from_beginning: bool, add: Callable[[dict[str, Any]], None]
    ) -> None:
        consumer = tail_consumer(bootstrap, topic, from_beginning=from_beginning, auth=auth)
        await consumer.start()
        try:
            async for message in consumer:
                with contextlib.suppress(orjson.JSONDecodeError):
                    value = orjson.loads(message.value)
                    if isinstance(value, dict):
                        add(value)
        finally:
            await consumer.stop()

    await asyncio.gather(
        follow(interventions_topic, False, feeds.add_intervention),
        follow(bad_topic, True, feeds.add_dead_letter),
    )


def add_console_routes(
    app: web.Application,
    *,
    worker_url: str,
    token: str,
    feeds: ConsoleFeeds,
    collector_stats: CollectorStats,
) -> None:
    worker = _WorkerClient(worker_url, token)
    page_template = string.Template((_HERE / "templates" / "console.html").read_text())

    def authorized(handler: Handler) -> Handler:
        async def check(request: web.Request) -> web.StreamResponse:
            given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            given = given or request.cookies.get(COOKIE, "")
            if not hmac.compare_digest(given.encode(), token.encode()):
                return web.Response(
                    status=401,
                    text="401: open the console URL that signals-stream dev printed "
                    "(/console/?token=...), or send Authorization: Bearer <SIGNALS_API_TOKEN>",
                )
            return await handler(request)

        return check

    async def login_or_page(request: web.Request) -> web.StreamResponse:
        offered = request.query.get("token")
        if offered is not None:
            if not hmac.compare_digest(offered.encode(), token.encode()):
                return web.Response(status=401, text="401: wrong token")
            response = web.HTTPFound("/console/")
            response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/console")
            raise response
        return await authorized(page)(request)

    async def page(request: web.Request) -> web.Response:
        definitions = await worker.definitions()
        body = page_template.substitute(definitions=_definitions_html(definitions))
        return web.Response(text=body, content_type="text/html")

    async def entity(request: web.Request) -> web.Response:
        key, entity_id = request.query.get("key", ""), request.query.get("id", "")
        if not key or not entity_id:
            return _json({"error": "bad_request", "message": "key and id are required"}, 400)
        groups = [
            g
            for g in (await worker.definitions())["attribute_groups"]
            if (g.get("attribute_key") or {}).get("name") == key and g.get("is_published")
        ]
        found: dict[str, Any] = {}
        for group in groups:
            status, values = await worker.get_json(
                f"/tables/{quote(group['name'])}/{group['version']}/{quote(entity_id, safe='')}"
            )
            found[f"{group['name']} v{group['version']}"] = values if status == 200 else None
        return _json({"key": key, "id": entity_id, "groups": found})

    async def health(request: web.Request) -> web.Response:
        status, stats = await worker.get_json("/stats")
        return _json(
            {
                "worker": stats if status == 200 else None,
                "lag": await worker.lag(),
                "collector": collector_stats.as_json(),
                "bad_by_reason": dict(feeds.bad_by_reason),
                "recent_bad": list(feeds.recent_bad)[::-1],
            }
        )

    async def interventions(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        for instance in list(feeds.interventions):
            await response.write(b"data: " + orjson.dumps(instance) + b"\n\n")
        feeds.subscribers.add(queue)
        try:
            while True:
                try:
                    instance = await asyncio.wait_for(queue.get(), timeout=15)
                except TimeoutError:
                    await response.write(b": ping\n\n")
                    continue
                await response.write(b"data: " + orjson.dumps(instance) + b"\n\n")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            feeds.subscribers.discard(queue)
        return response

    async def to_console(request: web.Request) -> web.Response:
        raise web.HTTPFound("/console/")

    app.router.add_get("/console", to_console)
    app.router.add_get("/console/", login_or_page)
    app.router.add_get("/console/api/entity", authorized(entity))
    app.router.add_get("/console/api/health", authorized(health))
    app.router.add_get("/console/api/interventions", authorized(interventions))
    app.router.add_static("/console/static/", _HERE / "static")
    app.on_cleanup.append(worker.close)


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


class _WorkerClient:
    """The worker's API with the token (one session; a failed call is a status, not a raise)."""

    def __init__(self, url: str, token: str) -> None:
        self._url = url
        self._headers = {"Authorization": f"Bearer {token}"}
        self._session: aiohttp.ClientSession | None = None

    async def _get(self, path: str) -> tuple[int, bytes]:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers=self._headers, timeout=aiohttp.ClientTimeout(total=5)
            )
        try:
            async with self._session.get(self._url + path) as answer:
                return answer.status, await answer.read()
        except (aiohttp.ClientError, TimeoutError):
            return 503, b""

    async def get_json(self, path: str) -> tuple[int, Any]:
        status, body = await self._get(path)
        try:
            return status, orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            return status, None

    async def definitions(self) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {}
        for kind in _REGISTRY_KINDS:
            status, items = await self.get_json(f"/api/v1/registry/{kind}/")
            found[kind] = items if status == 200 and isinstance(items, list) else []
        return found

    async def lag(self) -> dict[str, int]:
        """Records behind the log end, summed per topic (``signals_consumer_lag``)."""
        status, body = await self._get("/metrics")
        lag: collections.Counter[str] = collections.Counter()
        if status != 200:
            return {}
        for line in body.decode(errors="replace").splitlines():
            if line.startswith("signals_consumer_lag{"):
                labels, _, value = line.rpartition(" ")
                topic = (
                    labels.split('topic="', 1)[1].split('"', 1)[0] if 'topic="' in labels else ""
                )
                with contextlib.suppress(ValueError):
                    lag[topic] += int(float(value))
        return dict(lag)

    async def close(self, app: web.Application | None = None) -> None:
        if self._session is not None:
            await self._session.close()


def _definitions_html(definitions: dict[str, list[dict[str, Any]]]) -> str:
    parts: list[str] = []
    for kind, items in definitions.items():
        parts.append(f"<h3>{html.escape(kind.replace('_', ' '))} ({len(items)})</h3>")
        if not items:
            parts.append("<p class='none'>none</p>")
            continue
        rows = []
        for item in sorted(items, key=lambda i: (str(i.get("name")), int(i.get("version") or 0))):
            detail = _detail(kind, item)
            state = "published" if item.get("is_published") else "draft"
            rows.append(
                f"<tr data-definition='{html.escape(kind)}/{html.escape(str(item.get('name')))}'>"
                f"<td>{html.escape(str(item.get('name')))}</td>"
                f"<td>v{html.escape(str(item.get('version')))}</td>"
                f"<td>{state}</td><td>{detail}</td></tr>"
            )
        parts.append(
            "<table><tr><th>name</th><th>version</th><th>state</th><th></th></tr>"
            + "".join(rows)
            + "</table>"
        )
    return "\n".join(parts)


def _detail(kind: str, item: dict[str, Any]) -> str:
    if kind == "attribute_groups":
        key = (item.get("attribute_key") or {}).get("name", "")
        names = ", ".join(str(a.get("name")) for a in item.get("attributes") or [])
        return f"key <code>{html.escape(str(key))}</code>: {html.escape(names)}"
    if kind == "interventions":
        criteria = item.get("criteria") or {}
        text = "; ".join(
            f"{c.get('attribute')} {c.get('operator')} {c.get('value')}"
            for part in ("all", "any")
            for c in criteria.get(part) or []
        )
        return html.escape(text)
    return html.escape(str(item.get("description") or ""))
