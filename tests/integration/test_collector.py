"""The collector's HTTP edge on a real broker: tracker requests in, enriched TSV and dead letters
on the topics, cookies and CORS as the tracker needs them."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import orjson
import pytest

from signals_stream.collector.run import collector_app, kafka_sender, start_site
from signals_stream.collector.server import COOKIE_NAME, POST_PATH, CollectorStats
from signals_stream.devtools.broker import LocalBroker
from signals_stream.events.dead_letters import original_bytes
from signals_stream.events.parse import parse_tsv
from signals_stream.settings import load_settings
from tests.integration.workers import free_port, read_json_records

pytestmark = pytest.mark.integration

PAYLOAD = "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4"
ORIGIN = "http://shop.localhost:8000"


async def _read_values(bootstrap: str, topic: str, expected: int) -> list[bytes]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    values: list[bytes] = []
    try:
        for _ in range(100):
            if len(values) >= expected:
                break
            batch = await consumer.getmany(timeout_ms=300)
            values += [m.value for messages in batch.values() for m in messages]
    finally:
        await consumer.stop()
    return values


@pytest.fixture
async def collector(
    kafka_broker: LocalBroker, make_topic: Callable[..., str]
) -> AsyncIterator[tuple[str, str, str, CollectorStats]]:
    input_topic, bad_topic = make_topic(prefix="collector-in"), make_topic(prefix="collector-bad")
    settings = load_settings(
        broker=kafka_broker.url, input_topic=input_topic, bad_events_topic=bad_topic
    )
    stats = CollectorStats()
    port = free_port()
    async with kafka_sender([kafka_broker.bootstrap], {}) as send:
        runner = await start_site(collector_app(settings, send, stats), "127.0.0.1", port)
        try:
            yield f"http://127.0.0.1:{port}", input_topic, bad_topic, stats
        finally:
            await runner.cleanup()


async def test_post_get_cookie_cors_and_dead_letters(
    kafka_broker: LocalBroker, collector: tuple[str, str, str, CollectorStats]
) -> None:
    url, input_topic, bad_topic, stats = collector
    duid = str(uuid.uuid4())
    contexts = {
        "schema": "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-0",
        "data": [
            {
                "schema": "iglu:com.snowplowanalytics.snowplow/web_page/jsonschema/1-0-0",
                "data": {"id": "p1"},
            }
        ],
    }
    good: dict[str, Any] = {
        "e": "pv",
        "eid": str(uuid.uuid4()),
        "p": "web",
        "duid": duid,
        "url": "http://shop.localhost:8000/demo/",
        "cx": base64.urlsafe_b64encode(orjson.dumps(contexts)).decode().rstrip("="),
    }
    bad = {"e": "pv", "eid": "nope"}
    # unsafe: aiohttp's jar keeps no cookie of an IP-address host otherwise
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        async with session.options(
            url + POST_PATH,
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        ) as preflight:
            assert preflight.status == 200
            assert preflight.headers["Access-Control-Allow-Origin"] == ORIGIN
            assert preflight.headers["Access-Control-Allow-Credentials"] == "true"
            assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
            assert preflight.headers["Access-Control-Allow-Headers"] == "content-type"

        body = {"schema": PAYLOAD, "data": [good, bad]}
        async with session.post(
            url + POST_PATH, json=body, headers={"Origin": ORIGIN, "User-Agent": "test-agent/1"}
        ) as answer:
            assert answer.status == 400  # one of the two was refused: named in the answer
            refused = await answer.json()
            assert refused["bad_events"][0]["index"] == 1
            assert refused["bad_events"][0]["reason"] == "InvalidValue(eid)"
            assert answer.headers["Access-Control-Allow-Origin"] == ORIGIN
            nuid = answer.cookies[COOKIE_NAME].value
            assert uuid.UUID(nuid)

        # The cookie comes back on the next request: the same network user id.
        async with session.get(url + "/i", params={"e": "pp", "duid": duid}) as pixel:
            assert pixel.status == 200
            assert pixel.headers["Content-Type"] == "image/gif"
        async with session.post(url + POST_PATH, data=b"{not json") as broken:
            assert broken.status == 400
            assert (await broken.json())["bad_events"][0]["reason"] == "InvalidJson(body)"
        oversize = b'{"schema":"' + b"x" * 1_200_000 + b'"}'
        async with session.post(url + POST_PATH, data=oversize) as too_large:
            assert too_large.status == 400
            assert (await too_large.json())["bad_events"][0]["reason"] == "PayloadTooLarge"
        async with session.get(url + "/health") as health:
            assert health.status == 200

    values = await _read_values(kafka_broker.bootstrap, input_topic, 2)
    events = sorted((parse_tsv(v) for v in values), key=lambda e: e.event_name or "")
    assert [e.event_name for e in events] == ["page_ping", "page_view"]
    ping, view = events
    assert view.event_id == good["eid"]
    assert view.atomic("domain_userid") == duid
    assert view.atomic("network_userid") == ping.atomic("network_userid") == nuid
    assert view.atomic("useragent") == "test-agent/1"
    assert view.atomic("page_urlport") == 8000
    assert view.entities("contexts_com_snowplowanalytics_snowplow_web_page_1")[0]["id"] == "p1"

    letters = await read_json_records(kafka_broker.bootstrap, bad_topic, 3, timeout_s=30)
    assert sorted(str(letter["reason"]) for letter in letters) == [
        "InvalidJson(body)",
        "InvalidValue(eid)",
        "PayloadTooLarge",
    ]
    by_reason = {letter["reason"]: letter for letter in letters}
    assert orjson.loads(original_bytes(by_reason["InvalidValue(eid)"])) == bad
    assert original_bytes(by_reason["InvalidJson(body)"]) == b"{not json"
    # The oversize body's letter keeps a prefix and the size it saw (over the limit).
    assert by_reason["PayloadTooLarge"]["truncated"] is True
    assert original_bytes(by_reason["PayloadTooLarge"]).startswith(b'{"schema":"xxx')
    assert (stats.good, stats.bad) == (2, 3)


async def test_anonymous_requests_get_no_cookie(
    collector: tuple[str, str, str, CollectorStats],
) -> None:
    url = collector[0]
    async with aiohttp.ClientSession() as session:
        body = {"schema": PAYLOAD, "data": [{"e": "pv"}]}
        async with session.post(
            url + POST_PATH, json=body, headers={"SP-Anonymous": "*"}
        ) as answer:
            assert answer.status == 200
            assert COOKIE_NAME not in answer.cookies
