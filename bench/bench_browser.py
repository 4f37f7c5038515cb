"""The browser path (#19): the collector's events/s against the TSV producer, and click ->
banner in headless Debian chromium.

  (a) baseline: ``produce_records`` (the producer of ``replay``/``generate``) sends N
      generated enriched TSV lines to a topic of the local broker; events/s;
  (b) the collector, in this process, on the same broker: ``--concurrency`` HTTP clients POST
      tracker payloads of ``--per-request`` events (the browser tracker sends 1 by default) to
      ``/tp2``; events/s acknowledged (the collector answers once the broker acked). The
      clients run in the same process and on the same cores as the collector;
  (c) click -> banner: a worker with the dev stack's definitions, ``signals-stream collector
      --demo`` and chromium; ``--clicks`` times: reset the user, view 4 products, time from the
      fourth click to the discount banner being visible (Playwright's wait, polled in the
      page), p50/p99; misses (no banner within 10 s) are counted.

Run: python bench/bench_browser.py [--events 5000] [--per-request 1] [--concurrency 8]
     [--clicks 50] [--skip-browser]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from signals_stream.collector.run import collector_app, kafka_sender, start_site  # noqa: E402
from signals_stream.collector.server import POST_PATH, CollectorStats  # noqa: E402
from signals_stream.devtools.broker import LocalBroker  # noqa: E402
from signals_stream.devtools.generator import GeneratorConfig, generate_events  # noqa: E402
from signals_stream.devtools.produce import produce_records  # noqa: E402
from signals_stream.kafka.topics import TopicSpec, ensure_topics  # noqa: E402
from signals_stream.settings import load_settings  # noqa: E402

ECOMMERCE = "iglu:com.snowplowanalytics.snowplow.ecommerce"
PAYLOAD = "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4"


def tracker_event(duid: str, index: int) -> dict[str, str]:
    """A product-view-like tracker event: what the demo shop's tracker sends."""
    contexts = {
        "schema": "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-0",
        "data": [
            {
                "schema": "iglu:com.snowplowanalytics.snowplow/web_page/jsonschema/1-0-0",
                "data": {"id": str(uuid.uuid4())},
            },
            {
                "schema": ECOMMERCE + "/product/jsonschema/1-0-0",
                "data": {"id": f"sku-{index % 50}", "price": 25.0, "currency": "USD"},
            },
        ],
    }
    action = {
        "schema": "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0",
        "data": {
            "schema": ECOMMERCE + "/snowplow_ecommerce_action/jsonschema/1-0-2",
            "data": {"type": "product_view"},
        },
    }
    now = str(int(time.time() * 1000))
    return {
        "e": "ue",
        "eid": str(uuid.uuid4()),
        "tv": "js-4.10.1",
        "tna": "sp",
        "aid": "bench",
        "p": "web",
        "duid": duid,
        "sid": str(uuid.uuid4()),
        "vid": "1",
        "url": f"http://127.0.0.1:9090/demo/#/product/sku-{index % 50}",
        "page": "Demo shop",
        "dtm": now,
        "stm": now,
        "res": "1920x1080",
        "vp": "1280x720",
        "cx": base64.urlsafe_b64encode(orjson.dumps(contexts)).decode().rstrip("="),
        "ue_px": base64.urlsafe_b64encode(orjson.dumps(action)).decode().rstrip("="),
    }


async def producer_baseline(broker: LocalBroker, events: int) -> float:
    topic = f"bench-tsv-{uuid.uuid4().hex[:6]}"
    await ensure_topics([broker.bootstrap], [TopicSpec(topic, 4)])
    generated = itertools.islice(generate_events(GeneratorConfig(users=500, seed=7)), events)
    records = [(e.key, e.line) for e in generated]
    summary = await produce_records([broker.bootstrap], topic, records, total=events)
    return summary.events_per_s


async def collector_rate(broker: LocalBroker, events: int, per_request: int, clients: int) -> float:
    topic = f"bench-collector-{uuid.uuid4().hex[:6]}"
    await ensure_topics([broker.bootstrap], [TopicSpec(topic, 4), TopicSpec(topic + "-bad", 1)])
    settings = load_settings(broker=broker.url, input_topic=topic, bad_events_topic=topic + "-bad")
    stats = CollectorStats()
    port = 19000 + (uuid.uuid4().int % 900)
    bodies = [
        orjson.dumps(
            {
                "schema": PAYLOAD,
                "data": [tracker_event(f"user-{n % 200}", n + k) for k in range(per_request)],
            }
        )
        for n in range(0, events, per_request)
    ]
    async with kafka_sender([broker.bootstrap], {}) as send:
        runner = await start_site(collector_app(settings, send, stats), "127.0.0.1", port)
        try:
            url = f"http://127.0.0.1:{port}{POST_PATH}"
            queue = list(reversed(bodies))
            async with aiohttp.ClientSession() as session:

                async def client() -> None:
                    while queue:
                        body = queue.pop()
                        async with session.post(
                            url, data=body, headers={"Content-Type": "application/json"}
                        ) as answer:
                            assert answer.status == 200, await answer.text()

                started = time.perf_counter()
                await asyncio.gather(*(client() for _ in range(clients)))
                elapsed = time.perf_counter() - started
        finally:
            await runner.cleanup()
    assert stats.good == len(bodies) * per_request and stats.bad == 0
    return stats.good / elapsed


def click_to_banner(broker: LocalBroker, clicks: int) -> tuple[list[float], int]:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    from signals_stream.devtools.dev_stack import merged_examples
    from tests.integration.browser import CHROMIUM, running_site
    from tests.integration.workers import free_port, running_worker, stream_app

    times: list[float] = []
    misses = 0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        app = stream_app(broker, "bench-browser")
        env = app.env(work / "state", SIGNALS_DEFINITIONS=str(merged_examples(work)))
        with (
            running_worker(env, work / "worker.log") as worker,
            running_site(env, free_port(), work / "site.log") as site,
            sync_playwright() as playwright,
        ):
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page()
            page.goto(site.url + "/demo/")
            worker.wait_streams(1, timeout_s=30)
            for round_ in range(clicks):
                page.click("#reset-user")
                page.wait_for_load_state("load")
                page.wait_for_function("document.querySelector('#duid').textContent.length > 0")
                page.wait_for_timeout(500)  # the plugin's EventSource for the new id opens
                for sku in ("sku-tee", "sku-mug", "sku-hoodie"):
                    page.click(f"[data-product={sku}]")
                started = time.perf_counter()
                page.click("[data-product=sku-boots]")
                try:
                    page.wait_for_selector(
                        "[data-testid=discount-banner]", state="visible", timeout=10_000
                    )
                    times.append(time.perf_counter() - started)
                except PlaywrightTimeout:
                    misses += 1
                print(f"\rclick -> banner: {round_ + 1}/{clicks}", end="", file=sys.stderr)
            print(file=sys.stderr)
            browser.close()
    return times, misses


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main_async(args: argparse.Namespace) -> None:
    with LocalBroker() as broker:
        baseline = await producer_baseline(broker, args.events)
        rate = await collector_rate(broker, args.events, args.per_request, args.concurrency)
        print(f"(a) TSV producer (produce_records): {baseline:,.0f} events/s ({args.events:,})")
        print(
            f"(b) collector, {args.concurrency} clients x {args.per_request} event(s) per POST: "
            f"{rate:,.0f} events/s = {rate / baseline:.3f} x the producer"
        )
        if not args.skip_browser:
            times, misses = await asyncio.to_thread(click_to_banner, broker, args.clicks)
            ms = [t * 1000 for t in times]
            if ms:
                print(
                    f"(c) click -> banner over {len(ms)} rounds: p50 {pct(ms, 0.5):.0f} ms, "
                    f"p99 {pct(ms, 0.99):.0f} ms, mean {statistics.mean(ms):.0f} ms, "
                    f"max {max(ms):.0f} ms; misses {misses}"
                )
            else:
                print(f"(c) click -> banner: no banner in {misses} rounds")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--per-request", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--clicks", type=int, default=50)
    parser.add_argument("--skip-browser", action="store_true")
    args = parser.parse_args()
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
