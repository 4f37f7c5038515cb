"""Agentic contexts through the official SDK (0.4.10) on a real broker, over the ecommerce seed.

The SDK publishes two event logs (per session, and per user across sessions), the 834 seed
events are produced unkeyed (spread over four input partitions, so an entity's events arrive
out of event-time order), and ``get_agentic_context`` reads every buffer back in both formats.
Expectations come from the CSV alone (``workload.expected_buffers``); ``signals-stream api``
must answer the same bytes from Redis. Then the SDK unpublishes and deletes.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import httpx2
import orjson
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from snowplow_signals import (
    Attribute,
    Event,
    EventLog,
    EventLogAtomicProperty,
    EventLogEntityProperty,
    EventLogEvent,
    EventLogEventProperty,
    EventSelection,
    Service,
    SignalsAPIError,
    SignalsSandbox,
    StreamAttributeGroup,
    domain_sessionid,
    domain_userid,
)

from signals_stream.devtools.produce import produce_records
from tests.integration.test_redis_profiles import _eventually, api_process
from tests.integration.workers import API_TOKEN, Worker, free_port, running_worker, stream_app
from tests.redis_server import SHARED_REDIS_URL, delete_prefix
from tests.unit.engine.workload import ecommerce_lines, expected_buffers, seed_facts

pytestmark = pytest.mark.integration

ECOM = "com.snowplowanalytics.snowplow.ecommerce"
PROPERTIES = [
    EventLogAtomicProperty(name="event_name"),
    EventLogAtomicProperty(name="page_urlpath"),
    EventLogEventProperty(
        vendor=ECOM, name="snowplow_ecommerce_action", major_version=1, path="type"
    ),
    EventLogEntityProperty(
        vendor=ECOM, name="product", major_version=1, path="$.name", output_name="product"
    ),
]
SESSION_LOG = EventLog(
    name="shop_session",
    attribute_key=domain_sessionid,
    prompt="You help shoppers.",
    events=[
        EventSelection(
            event=EventLogEvent(name="snowplow_ecommerce_action", major_version=1),
            properties=PROPERTIES,
        )
    ],
    max_events=10,
    max_age_seconds=600,
)
USER_LOG = EventLog(
    name="shop_user",
    attribute_key=domain_userid,
    events=[
        EventSelection(
            event=EventLogEvent(vendor="ecommerce.tracking", version="1-0-0"),
            properties=PROPERTIES,
        )
    ],
    max_events=100,
    max_age_seconds=3600,
)
ACTIONS = StreamAttributeGroup(
    name="shop_actions",
    version=1,
    attribute_key=domain_sessionid,
    owner="agentic@example.com",
    attributes=[
        Attribute(
            name="actions",
            type="int32",
            events=[
                Event(
                    vendor="ecommerce.tracking", name="snowplow_ecommerce_action", version="1-0-0"
                )
            ],
            aggregation="counter",
        )
    ],
)
SERVICE = Service(name="shop", owner="agentic@example.com", attribute_groups=[ACTIONS])
TIMEOUT_S = 90.0


def _session_selected(f: Any) -> bool:
    return f.identity[1] == "snowplow_ecommerce_action" and f.identity[2].startswith("1-")


def _user_selected(f: Any) -> bool:
    return f.identity[0] == "ecommerce.tracking" and f.identity[2] == "1-0-0"


def _table_rows(facts: list[Any], session: str, entries: list[dict[str, Any]]) -> list[str]:
    """The narrative's table rows, by hand: seconds since the session's first event (any
    event), event name, URL path, the other properties as ``k=v`` without nulls."""
    start_ms = min(f.time_ms for f in facts if f.domain_sessionid == session)
    chosen = sorted(
        (f for f in facts if f.domain_sessionid == session and _session_selected(f)),
        key=lambda f: (f.time_ms, f.event_id),
    )[-len(entries) :]
    rows = []
    for fact, entry in zip(chosen, entries, strict=True):
        rest = "; ".join(f"{k}={v}" for k in ("type", "product") if (v := entry[k]) is not None)
        rows.append(
            f"| {(fact.time_ms - start_ms) // 1000} | {entry['event_name']} | "
            f"{entry['page_urlpath'] or ''} | {rest} |"
        )
    return rows


def _get(process: Worker, name: str, identifier: str, fmt: str) -> tuple[int, bytes]:
    return process.get(f"/api/v1/event_log?name={name}&identifier={identifier}&format={fmt}")


def test_sdk_agentic_contexts_on_the_ecommerce_seed(kafka_broker: Any, tmp_path: Path) -> None:
    facts = list(seed_facts())
    sessions = expected_buffers(facts, "domain_sessionid", _session_selected, 10, 600)
    users = expected_buffers(facts, "domain_userid", _user_selected, 100, 3600)
    app = stream_app(kafka_broker, "agentic")
    common = {"SIGNALS_REDIS_URL": SHARED_REDIS_URL}
    try:
        with running_worker(app.env(tmp_path / "w", **common), tmp_path / "worker.log") as worker:
            signals = SignalsSandbox(api_url=worker.url, sandbox_token=API_TOKEN)
            signals.publish([ACTIONS, SERVICE, SESSION_LOG, USER_LOG])
            stored = signals.get_event_log("shop_session")
            assert stored.is_published and stored.max_events == 10
            # Bad bodies are 422 naming the field; a published log cannot be deleted (409).
            bad = {**SESSION_LOG.model_dump(mode="json", exclude_none=True), "name": "bad"}
            for field, value in (("max_events", 101), ("max_age_seconds", 3601), ("events", [])):
                status, body = worker.request(
                    "POST", "/api/v1/registry/event_logs/", {**bad, field: value}
                )
                assert status == 422 and field in body.decode(), (field, status, body)
            assert worker.request("DELETE", "/api/v1/registry/event_logs/shop_session")[0] == 409
            time.sleep(2.0)  # live on every worker within a second
            lines = [line.encode() for line in ecommerce_lines()]
            summary = asyncio.run(
                produce_records(
                    [kafka_broker.bootstrap], app.input_topic, ((None, x) for x in lines)
                )
            )
            assert summary.sent == len(lines)

            def wrong(log: str, expected: dict[str, list[dict[str, Any]]]) -> list[Any]:
                out = []
                for entity, events in expected.items():
                    try:
                        got = signals.get_agentic_context(name=log, identifier=entity)
                    except SignalsAPIError as exc:  # 503 until partitions are assigned
                        if "503" not in str(exc):
                            raise
                        return [(entity, str(exc))]
                    if got.events != events:  # type: ignore[union-attr]
                        out.append((entity, len(got.events), len(events)))  # type: ignore[union-attr]
                return out

            _eventually(lambda: wrong("shop_session", sessions), "session buffers", TIMEOUT_S)
            _eventually(lambda: wrong("shop_user", users), "user buffers", TIMEOUT_S)

            session, entries = max(sessions.items(), key=lambda kv: len(kv[1]))
            context = signals.get_agentic_context(name="shop_session", identifier=session)
            assert context.attribute_key == "domain_sessionid"  # type: ignore[union-attr]
            assert context.prompt == "You help shoppers."  # type: ignore[union-attr]
            start = min(f.time_ms for f in facts if f.domain_sessionid == session)
            assert context.started_at_ms == start  # type: ignore[union-attr]
            text = signals.get_agentic_context(
                name="shop_session", identifier=session, format="narrative"
            )
            assert isinstance(text, str)
            lines_out = text.split("\n")
            assert lines_out[0] == "[START CONTEXT]" and lines_out[-1] == "[END CONTEXT]"
            assert "Based on last 10 recorded events for the last 600 seconds." in text
            header = lines_out.index(
                "| seconds_since_start_of_session | event | url | event_context |"
            )
            assert lines_out[header + 2 : -1] == _table_rows(facts, session, entries)

            empty = signals.get_agentic_context(name="shop_session", identifier="nobody")
            assert empty.events == []  # type: ignore[union-attr]
            with pytest.raises(SignalsAPIError):
                signals.get_agentic_context(name="no_such_log", identifier=session)
            assert _get(worker, "no_such_log", session, "json")[0] == 404
            assert _get(worker, "shop_session", session, "xml")[0] == 422
            anonymous = urllib.request.Request(
                f"{worker.url}/api/v1/event_log?name=shop_session&identifier={session}"
            )
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(anonymous, timeout=5)
            assert refused.value.code == 401

            asyncio.run(_mcp_sessions(worker, session, text, facts))

            # The stateless API answers the same bytes from Redis (the summary counts whole
            # seconds of the wall clock, so a pair straddling a second is asked again).
            with api_process(app.env(tmp_path / "api", **common), tmp_path / "api.log") as api:
                probes = list(sessions)[:10]

                def differ() -> list[Any]:
                    out = []
                    for entity in probes:
                        for fmt in ("json", "narrative"):
                            a, b = (
                                _get(worker, "shop_session", entity, fmt),
                                _get(api, "shop_session", entity, fmt),
                            )
                            if a != b:
                                out.append((entity, fmt, a[1][:80], b[1][:80]))
                    return out

                _eventually(differ, "API vs worker", TIMEOUT_S)
                assert _get(api, "no_such_log", session, "json")[0] == 404
                status, body = _get(api, "shop_session", "nobody", "json")
                assert status == 200 and orjson.loads(body)["events"] == []
                with pytest.raises(urllib.error.HTTPError) as refused:
                    urllib.request.urlopen(
                        f"{api.url}/api/v1/event_log?name=shop_session&identifier={session}",
                        timeout=5,
                    )
                assert refused.value.code == 401
                status, body = _get(api, "shop_user", next(iter(users)), "json")
                assert status == 200 and orjson.loads(body)["events"] == users[next(iter(users))]

            signals.unpublish([SESSION_LOG, USER_LOG, SERVICE, ACTIONS])
            signals.delete([SESSION_LOG, USER_LOG, SERVICE, ACTIONS])
            assert _get(worker, "shop_session", session, "json")[0] == 404
    finally:
        delete_prefix(SHARED_REDIS_URL, app.app_id)


def _table(text: str) -> list[str]:
    """The narrative without its summary line (which counts seconds of the wall clock)."""
    return [line for line in text.split("\n") if not line.endswith("seconds.")]


async def _mcp_sessions(worker: Worker, session: str, narrative: str, facts: list[Any]) -> None:
    """A real MCP client session from the official SDK, over stdio and over streamable HTTP
    (behind the bearer token), calling every tool."""
    actions = sum(
        1
        for f in facts
        if f.domain_sessionid == session
        and f.identity == ("ecommerce.tracking", "snowplow_ecommerce_action", "1-0-0")
    )
    stdio = StdioServerParameters(
        command=sys.executable,
        args=["-m", "signals_stream.cli", "mcp", "--url", worker.url],
        env={"SIGNALS_API_TOKEN": API_TOKEN},
    )
    async with Client(stdio) as client:
        await _check_tools(client, session, narrative, actions)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "signals_stream.cli", "mcp", "--http", "--port", str(port),
         "--url", worker.url],
        env={**os.environ, "SIGNALS_API_TOKEN": API_TOKEN},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/mcp"
        deadline = time.monotonic() + 30
        while True:
            try:
                status = httpx2.post(url, json={}).status_code
                break
            except httpx2.TransportError:
                assert time.monotonic() < deadline, "the MCP HTTP server did not start"
                await asyncio.sleep(0.3)
        assert status == 401  # no token
        headers = {"Authorization": f"Bearer {API_TOKEN}"}
        async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
            async with Client(streamable_http_client(url, http_client=http)) as client:
                await _check_tools(client, session, narrative, actions)
    finally:
        server.terminate()
        server.wait(timeout=20)


async def _check_tools(client: Client, session: str, narrative: str, actions: int) -> None:
    tools = {t.name for t in (await client.list_tools()).tools}
    assert tools == {"list_services", "list_event_logs", "get_attributes", "get_agentic_context"}
    logs = await client.call_tool("list_event_logs", {})
    assert not logs.is_error
    assert logs.structured_content is not None
    names = {e["name"] for e in logs.structured_content["result"]}
    assert names == {"shop_session", "shop_user"}
    services = await client.call_tool("list_services", {})
    assert services.structured_content is not None
    assert [s["name"] for s in services.structured_content["result"]] == ["shop"]
    got = await client.call_tool(
        "get_agentic_context", {"name": "shop_session", "identifier": session}
    )
    assert _table(got.content[0].text) == _table(narrative)  # type: ignore[union-attr]
    values = await client.call_tool(
        "get_attributes",
        {"service": "shop", "attribute_key": "domain_sessionid", "identifier": session},
    )
    assert values.structured_content == {
        "domain_sessionid": session,
        "actions": actions,
    }
    missing = await client.call_tool("get_agentic_context", {"name": "nope", "identifier": "x"})
    assert missing.is_error and "404" in missing.content[0].text  # type: ignore[union-attr]
