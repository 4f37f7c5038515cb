"""A worker started as a production user starts it (default group timeouts, a topic set it
has never seen) takes the official SDK's publish as soon as it answers /healthz, every time.

The registry write is answered once this worker has read its own records back, so the SDK's
``publish`` (which does not retry) either succeeds or fails loudly; the published group must
then be readable through the SDK within a second.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from snowplow_signals import Attribute, PageView, SignalsSandbox, StreamAttributeGroup
from snowplow_signals import domain_userid as domain_userid_key

from signals_stream.settings import Settings
from tests.integration.workers import API_TOKEN, Worker, stream_app

pytestmark = pytest.mark.integration

RUNS = 3
PRODUCTION_GROUP_TIMEOUTS = {  # the settings' defaults, not the tests' fast ones
    "SIGNALS_BROKER_SESSION_TIMEOUT_S": str(
        Settings.model_fields["broker_session_timeout_s"].default
    ),
    "SIGNALS_BROKER_REBALANCE_TIMEOUT_S": str(
        Settings.model_fields["broker_rebalance_timeout_s"].default
    ),
}


def _group(run: int) -> StreamAttributeGroup:
    return StreamAttributeGroup(
        name=f"first_publish_{run}",
        version=1,
        attribute_key=domain_userid_key,
        owner="tests@example.com",
        attributes=[
            Attribute(name="page_views", type="int64", events=[PageView()], aggregation="counter")
        ],
    )


@pytest.mark.timeout(600)
@pytest.mark.parametrize("run", range(RUNS))
def test_a_fresh_worker_takes_an_immediate_sdk_publish(
    kafka_broker, tmp_path: Path, run: int
) -> None:
    app = stream_app(kafka_broker, f"first-publish-{run}")
    worker = Worker(app.env(tmp_path / "state", **PRODUCTION_GROUP_TIMEOUTS), tmp_path / "w.log")
    try:
        worker.wait_healthy(timeout_s=180)
        signals = SignalsSandbox(api_url=worker.url, sandbox_token=API_TOKEN)
        group = _group(run)
        published = signals.publish([group])  # raises on any error answer
        assert [getattr(p, "name", None) for p in published] == [group.name]
        started = time.monotonic()
        found = signals.get_attribute_group(name=group.name, version=1)
        assert found.name == group.name and found.version == 1
        assert time.monotonic() - started < 1.0
    finally:
        worker.stop()
