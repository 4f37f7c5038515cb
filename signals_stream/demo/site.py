"""The demo shop's routes: ``/demo/`` (its page, configured for this stack) and its static files."""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from signals_stream.collector.server import POST_PATH

__all__ = ["PRODUCTS", "add_demo_routes"]

_HERE = Path(__file__).parent
# A small catalogue: prices chosen so that two or three adds pass the $100 free-shipping line.
PRODUCTS: tuple[dict[str, Any], ...] = (
    {"id": "sku-tee", "name": "Snowplow tee", "category": "clothing", "price": 25.0},
    {"id": "sku-mug", "name": "Signals mug", "category": "kitchen", "price": 15.0},
    {"id": "sku-hoodie", "name": "Kafka hoodie", "category": "clothing", "price": 60.0},
    {"id": "sku-boots", "name": "Trail boots", "category": "shoes", "price": 120.0},
    {"id": "sku-cap", "name": "Stream cap", "category": "clothing", "price": 20.0},
    {"id": "sku-bag", "name": "Event bag", "category": "bags", "price": 45.0},
)


def add_demo_routes(app: web.Application, signals_url: str, bundle: Path) -> None:
    """``/demo/``: the shop, tracking to this app's collector and subscribing to ``signals_url``.

    ``bundle`` is the front end built by :func:`signals_stream.demo.build.build_demo`.
    """
    template = string.Template((_HERE / "templates" / "shop.html").read_text())

    async def page(request: web.Request) -> web.Response:
        origin = f"{request.scheme}://{request.host}"
        config = {
            "collectorUrl": origin,
            "postPath": POST_PATH,
            "signalsUrl": signals_url,
            "products": PRODUCTS,
        }
        # orjson escapes nothing HTML-special here (fixed data), but "</" must never appear.
        text = orjson.dumps(config).decode().replace("</", "<\\/")
        return web.Response(text=template.substitute(config=text), content_type="text/html")

    async def script(request: web.Request) -> web.FileResponse:
        return web.FileResponse(bundle, headers={"Cache-Control": "no-store"})

    async def to_demo(request: web.Request) -> web.Response:
        raise web.HTTPFound("/demo/")

    app.router.add_get("/demo", to_demo)
    app.router.add_get("/demo/", page)
    app.router.add_get("/demo/static/shop.js", script)
    app.router.add_static("/demo/static/", _HERE / "static")
