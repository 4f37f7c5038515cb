"""``signals-stream mcp``: a Model Context Protocol server (the official ``mcp`` SDK) giving
agent frameworks Signals as tools: list services and event logs, a service's attributes for an
id, and an entity's agentic context (narrative by default).

The server is a client of the Signals HTTP API (a worker, or ``signals-stream api``) with the
bearer token, so it holds no state and answers exactly what the SDKs would read. It runs over
stdio (an agent launches it) or streamable HTTP at ``/mcp``, where every request needs the same
bearer token as the API.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Literal

import httpx
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

__all__ = ["build_server", "require_token"]

_TIMEOUT_S = 10.0

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]


def build_server(api_url: str, token: str | None) -> MCPServer:
    """The MCP server, its tools calling the Signals API at ``api_url``."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    base = api_url.rstrip("/") + "/api/v1/"
    server: MCPServer = MCPServer(
        name="signals-stream",
        instructions=(
            "Real-time Snowplow Signals: attributes of users and sessions, and agentic "
            "contexts (their recent events). Start with list_event_logs or list_services."
        ),
    )

    async def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
        async with httpx.AsyncClient(timeout=_TIMEOUT_S, headers=headers) as client:
            try:
                response = await client.request(method, base + path, **kwargs)
            except httpx.HTTPError as exc:
                raise ToolError(f"the Signals API at {api_url} is unreachable: {exc}") from exc
        if response.status_code != 200:
            raise ToolError(f"Signals API {response.status_code}: {response.text[:500]}")
        return response

    @server.tool()
    async def list_services() -> list[dict[str, Any]]:
        """The services (named sets of attribute groups) whose attributes can be read."""
        body = (await call("GET", "registry/services/")).json()
        return [
            {
                "name": s["name"],
                "description": s.get("description"),
                "attribute_groups": s.get("attribute_groups", []),
            }
            for s in body
        ]

    @server.tool()
    async def list_event_logs() -> list[dict[str, Any]]:
        """The agentic contexts (event logs): their names, attribute keys, descriptions and
        whether they are published (only published ones have contexts)."""
        body = (await call("GET", "registry/event_logs/")).json()
        return [
            {
                "name": e["name"],
                "attribute_key": e["attribute_key"]["name"],
                "description": e.get("description"),
                "is_published": e.get("is_published", False),
                "max_events": e.get("max_events"),
                "max_age_seconds": e.get("max_age_seconds"),
            }
            for e in body
        ]

    @server.tool()
    async def get_attributes(service: str, attribute_key: str, identifier: str) -> dict[str, Any]:
        """A service's attribute values for one entity, e.g. attribute_key='domain_userid'
        and identifier=<the user's domain_userid>."""
        body = (
            await call(
                "POST",
                "get-online-attributes",
                json={"service": service, "attribute_keys": {attribute_key: [identifier]}},
            )
        ).json()
        return {name: values[0] if values else None for name, values in body.items()}

    @server.tool()
    async def get_agentic_context(
        name: str, identifier: str, format: Literal["narrative", "json"] = "narrative"
    ) -> str:
        """An entity's agentic context: its recent events under the event log ``name``, as a
        plain-text block for an LLM (``narrative``) or as JSON text (``json``)."""
        params = {"name": name, "identifier": identifier, "format": format}
        return (await call("GET", "event_log", params=params)).text

    return server


def require_token(app: Asgi, token: str | None) -> Asgi:
    """``app`` behind the bearer token (HTTP requests without it answer 401)."""
    if not token:
        return app
    expected = f"Bearer {token}".encode()

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, expected):
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"www-authenticate", b'Bearer realm="signals"'),
                        ],
                    }
                )
                await send(
                    {
                        "type": "http.response.body",
                        "body": b'{"error":"unauthorized","detail":"missing or wrong token"}',
                    }
                )
                return
        await app(scope, receive, send)

    return guarded
