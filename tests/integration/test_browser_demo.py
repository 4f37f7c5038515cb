"""The demo shop in headless Debian chromium, end to end on the real broker and worker: the
official tracker posts to our collector, the worker folds the events and fires the tutorial's
interventions, the Signals browser plugin receives them over SSE from the worker and shows them,
and the console shows the user's attributes and interventions."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import pytest

from signals_stream.collector.mapping import RequestContext, enriched_tsv
from signals_stream.collector.server import POST_PATH
from signals_stream.demo.site import PRODUCTS
from signals_stream.devtools.broker import LocalBroker
from signals_stream.devtools.dev_stack import merged_examples
from signals_stream.events.parse import parse_tsv
from tests.integration.browser import chromium_page, running_site
from tests.integration.workers import API_TOKEN, free_port, running_worker, stream_app

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

BANNER_WITHIN_S = 5.0
BROKEN = b"{not json"
VIEWED = ["sku-tee", "sku-mug", "sku-hoodie", "sku-boots"]  # the fourth is the one added
PRICE = {p["id"]: p["price"] for p in PRODUCTS}
ACTION_KEY = "unstruct_event_com_snowplowanalytics_snowplow_ecommerce_snowplow_ecommerce_action_1"


async def _input_events(bootstrap: str, topic: str, duid: str, want: int) -> list[Any]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    found: list[Any] = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(found) < want:
            batch = await consumer.getmany(timeout_ms=300)
            for messages in batch.values():
                for message in messages:
                    event = parse_tsv(message.value)
                    if event.atomic("domain_userid") == duid:
                        found.append(event)
    finally:
        await consumer.stop()
    return found


def test_demo_shop_interventions_and_console(
    kafka_broker: LocalBroker, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    app = stream_app(kafka_broker, "browser")
    definitions = merged_examples(tmp_path)
    env = app.env(tmp_path / "state", SIGNALS_DEFINITIONS=str(definitions))
    site_port = free_port()
    posted: list[bytes] = []
    with (
        running_worker(env, tmp_path / "worker.log") as worker,
        running_site(env, site_port, tmp_path / "site.log") as site,
        chromium_page(request) as page,
    ):
        page.on(
            "request",
            lambda r: (
                posted.append(r.post_data_buffer or b"") if r.url.endswith(POST_PATH) else None
            ),
        )
        page.goto(site.url + "/demo/")
        page.wait_for_function("document.querySelector('#duid').textContent.length > 0")
        duid = page.text_content("#duid") or ""
        assert len(duid) == 36, duid

        # The plugin subscribed to the worker's SSE for this browser's ids.
        worker.wait_streams(1, timeout_s=30)

        for sku in VIEWED:
            assert page.is_hidden("[data-testid=discount-banner]")
            page.click(f"[data-product={sku}]")
        clicked = time.monotonic()
        page.wait_for_selector(
            "[data-testid=discount-banner]", state="visible", timeout=BANNER_WITHIN_S * 1000
        )
        print(f"banner visible {time.monotonic() - clicked:.3f}s after the fourth product view")
        assert page.is_hidden("[data-testid=cart-reminder]")

        page.click("#add-to-cart")  # the boots, $120: over the free-shipping line too
        page.wait_for_selector("[data-testid=cart-reminder]", state="visible", timeout=10_000)
        page.wait_for_selector("[data-testid=free-shipping]", state="visible", timeout=10_000)
        page.click("[data-remove=sku-boots]")  # cart $0
        assert page.text_content("#cart-total") == "$0.00"
        page.click("#add-to-cart")  # $120 again, then the order
        page.click("#checkout")
        page.wait_for_selector("#order-done", state="visible")

        # A payload the collector refuses, sent from the page: answered 400, dead-lettered.
        status = page.evaluate(
            "({path, body}) => fetch(path, {method: 'POST', body,"
            " headers: {'Content-Type': 'application/json'}}).then(r => r.status)",
            {"path": POST_PATH, "body": BROKEN.decode()},
        )
        assert status == 400

        # The console: this user's attributes (counted by hand: 4 views, 2 adds, $120 cart)
        # and the interventions fired for them.
        page.goto(f"{site.url}/console/?token={quote(API_TOKEN)}")
        page.goto(f"{site.url}/console/?key=domain_userid&id={duid}")
        group = "[data-group='demo_shopper v1']"
        page.wait_for_selector(f"{group} [data-attribute=product_views]", timeout=15_000)
        page.wait_for_function(
            "s => { const r = document.querySelector(s); return r && r.children[1].textContent"
            " === '120'; }",
            arg=f"{group} [data-attribute=cart_value]",
            timeout=15_000,
        )
        row = page.inner_text(f"{group} [data-attribute=product_views]")
        assert row.split() == ["product_views", "4"]
        assert page.inner_text(f"{group} [data-attribute=cart_adds]").split() == ["cart_adds", "2"]
        for name in ("discount_banner", "cart_reminder", "free_shipping"):
            page.wait_for_selector(
                f"[data-testid=interventions] li[data-intervention={name}][data-target='{duid}']",
                timeout=15_000,
            )
        assert page.locator("tr[data-definition='interventions/discount_banner']").count() == 1
        # Stream health: the refused payload, by reason and among the recent dead letters.
        page.wait_for_selector("#bad-reasons td:text-is('InvalidJson(body)')", timeout=15_000)
        assert "collector:" + POST_PATH in page.inner_text("#dead-letters")

        # "Reset user": a fresh domain_userid, nothing shown until it earns it again.
        page.goto(site.url + "/demo/")
        page.wait_for_function("document.querySelector('#duid').textContent.length > 0")
        assert page.text_content("#duid") == duid
        page.click("#reset-user")
        page.wait_for_function(
            "old => { const d = document.querySelector('#duid').textContent;"
            " return d.length > 0 && d !== old; }",
            arg=duid,
        )
        assert page.is_hidden("[data-testid=discount-banner]")
        assert page.is_hidden("[data-testid=cart-reminder]")

    # A payload the real tracker sent, through the mapping and the engine's parser.
    context = RequestContext(
        collector_tstamp=datetime.now(UTC),
        etl_tstamp=datetime.now(UTC),
        network_userid=None,
        useragent=None,
        ip_address=None,
        v_collector="test",
        v_etl="test",
        new_event_id="",
    )
    events = [e for body in posted if body != BROKEN for e in orjson.loads(body)["data"]]
    views = []
    for params in events:
        event = parse_tsv(enriched_tsv(params, context).encode())
        if event.atomic("domain_userid") != duid:  # after the reset
            continue
        if event.unstruct_data == {"type": "product_view"}:
            views.append(event)
    products = [
        e.entities("contexts_com_snowplowanalytics_snowplow_ecommerce_product_1")[0] for e in views
    ]
    assert [(p["id"], p["price"]) for p in products] == [(s, PRICE[s]) for s in VIEWED]
    # What the browser knew: Playwright's default 1280x720 viewport, the page's URL.
    first = views[0]
    assert (first.atomic("br_viewwidth"), first.atomic("br_viewheight")) == (1280, 720)
    assert first.atomic("page_urlhost") == "127.0.0.1"
    assert first.atomic("page_urlport") == site_port
    assert first.atomic("page_urlpath") == "/demo/"
    assert first.atomic("page_urlfragment") == f"/product/{VIEWED[0]}"
    assert first.atomic("platform") == "web" and first.atomic("app_id") == "demo-shop"
    assert str(first.atomic("v_tracker")).startswith("js-4.")
    assert first.event_time_ms <= first.collector_tstamp_ms

    # What the collector put on the input topic: the shop's events and, sent back by the
    # plugin, its intervention_receive / intervention_handle measurement events.
    expected = sum(1 for params in events if params.get("duid") == duid)
    seen = asyncio.run(_input_events(kafka_broker.bootstrap, app.input_topic, duid, expected))
    names = {e.event_name for e in seen}
    assert {"page_view", "snowplow_ecommerce_action"} <= names
    assert {"intervention_receive", "intervention_handle"} <= names
    actions = [e.unstruct_data["type"] for e in seen if e.unstruct_key == ACTION_KEY]
    assert sorted(actions) == sorted(
        ["product_view"] * len(VIEWED)
        + ["add_to_cart", "remove_from_cart", "add_to_cart", "checkout_step", "transaction"]
    )
