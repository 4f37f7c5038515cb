"""Conformance of the official Node SDK (``@snowplow/signals-node``, pinned in
``tests/integration/node/package.json``) against a real worker.

The SDK is installed with ``npm ci`` into a cache directory (``.cache/node-sdk`` at the
repository root, or ``SIGNALS_NODE_CACHE``), reused while ``package-lock.json`` is unchanged;
``node/client.mjs`` runs one SDK call per process and prints its result as JSON. A group and a
service are published with the Python SDK, events are produced, and the Node SDK's three
methods must return the values computed here.

What the Node SDK does with the server's answer (read from its ``dist`` files, core 0.2.0):
single-id calls keep ``column[0]``; ``getBatchServiceAttributes`` keeps every column aligned
with the identifiers but unwraps a one-element list value to the value itself and an empty
list to ``undefined`` (printed as null). The expectations below apply that same rule.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from snowplow_signals import (
    AtomicProperty,
    Attribute,
    PagePing,
    PageView,
    Service,
    SignalsSandbox,
    StreamAttributeGroup,
    domain_sessionid,
)

from tests.integration.test_sdk_conformance import (
    OWNER,
    PUBLISH_SETTLE_S,
    OneOf,
    SampleEvent,
    eventually,
    now_ms,
    produce_events,
)
from tests.integration.workers import API_TOKEN, StreamApp, Worker, stream_app

NODE = shutil.which("node")
NPM = shutil.which("npm")
pytestmark = [
    pytest.mark.integration,
    # The first test sets up the module's fixture: `npm ci` (up to 300 s), a worker (90 s), reads.
    pytest.mark.timeout(900),
    pytest.mark.skipif(NODE is None, reason="node is not installed (the Node SDK needs Node 18+)"),
]

ROOT = Path(__file__).resolve().parents[2]
PROJECT = Path(__file__).resolve().parent / "node"
CACHE = Path(os.environ.get("SIGNALS_NODE_CACHE") or ROOT / ".cache" / "node-sdk")
PINNED = json.loads((PROJECT / "package.json").read_text())["dependencies"][
    "@snowplow/signals-node"
]

GROUP = StreamAttributeGroup(
    name="node_session",
    version=1,
    attribute_key=domain_sessionid,
    owner=OWNER,
    attributes=[
        Attribute(
            name="page_views",
            type="int64",
            events=[PageView()],
            aggregation="counter",
            default_value=0,
        ),
        Attribute(
            name="last_path",
            type="string",
            events=[PageView()],
            aggregation="last",
            property=AtomicProperty(name="page_urlpath"),
        ),
        Attribute(
            name="paths",
            type="string_list",
            events=[PageView()],
            aggregation="unique_list",
            property=AtomicProperty(name="page_urlpath"),
        ),
        Attribute(
            name="scroll_sum",
            type="int64",
            events=[PagePing()],
            aggregation="sum",
            property=AtomicProperty(name="pp_yoffset_max"),
            default_value=0,
        ),
    ],
)
SERVICE = Service(name="node_service", owner=OWNER, attribute_groups=[GROUP])


# --- the SDK install and the client --------------------------------------------------------------


def _lock_digest() -> str:
    digest = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        digest.update((PROJECT / name).read_bytes())
    return digest.hexdigest()


def _install() -> Path:
    """``npm ci`` the pinned SDK into CACHE unless the same lock is installed there already;
    returns the client script's path inside CACHE (ES modules resolve packages from there)."""
    stamp = CACHE / ".lock-sha256"
    installed = CACHE / "node_modules" / "@snowplow" / "signals-node" / "package.json"
    if not (stamp.is_file() and stamp.read_text() == _lock_digest() and installed.is_file()):
        if NPM is None:
            pytest.fail("node is installed but npm is not: npm installs the pinned Node SDK")
        CACHE.mkdir(parents=True, exist_ok=True)
        stamp.unlink(missing_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(PROJECT / name, CACHE / name)
        try:
            done = subprocess.run(
                [NPM, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--prefer-offline"],
                cwd=CACHE,
                capture_output=True,
                text=True,
                timeout=300,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"npm ci in {CACHE} took more than 300 s (is the npm registry reachable?)")
        if done.returncode != 0:
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
            pytest.fail(
                f"npm ci of @snowplow/signals-node@{PINNED} failed (exit {done.returncode}). "
                "The first run needs the npm registry (or its npm cache); later runs reuse "
                f"{CACHE} offline.\n{tail}"
            )
        stamp.write_text(_lock_digest())
    version = json.loads(installed.read_text())["version"]
    assert version == PINNED, f"{installed} is {version}, package.json pins {PINNED}"
    client = CACHE / "client.mjs"
    shutil.copyfile(PROJECT / "client.mjs", client)
    return client


@dataclass(frozen=True)
class NodeClient:
    script: Path
    base_url: str

    def call(self, call: str, args: dict[str, Any], token: str = API_TOKEN) -> dict[str, Any]:
        """Run one SDK call; ``{"ok": True, "result": ...}`` or ``{"ok": False, "error": ...}``."""
        request = {"baseUrl": self.base_url, "sandboxToken": token, "call": call, "args": args}
        assert NODE is not None
        done = subprocess.run(
            [NODE, str(self.script)],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode in (0, 2), (done.returncode, done.stderr)
        return json.loads(done.stdout)

    def result(self, call: str, args: dict[str, Any]) -> Any:
        answer = self.call(call, args)
        assert answer["ok"], answer["error"]
        return answer["result"]


# --- the scenario -------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeScenario:
    node: NodeClient
    signals: SignalsSandbox
    worker: Worker
    app: StreamApp
    sessions: tuple[str, str, str]  # two with events, one without
    expected: dict[str, dict[str, Any]]


def _expected(events: list[SampleEvent], session: str) -> dict[str, Any]:
    views = [e for e in sorted(events, key=lambda e: e.at_ms) if e.session == session]
    paths: list[str] = []
    for view in (e for e in views if e.kind == "page_view"):
        if view.path in paths:
            paths.remove(view.path)
        paths.append(view.path)
    pages = [e for e in views if e.kind == "page_view"]
    return {
        "domain_sessionid": session,
        "page_views": len(pages),
        "last_path": pages[-1].path if pages else None,
        "paths": paths if paths else OneOf((None, [])),
        "scroll_sum": sum(e.scroll_y for e in views if e.kind == "page_ping"),
    }


@pytest.fixture(scope="module")
def node_scenario(
    kafka_broker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NodeScenario]:
    script = _install()
    base = tmp_path_factory.mktemp("node-sdk")
    app = stream_app(kafka_broker, "node")
    worker = Worker(app.env(base / "state"), base / "worker.log")
    try:
        worker.wait_healthy()
        signals = SignalsSandbox(api_url=worker.url, sandbox_token=API_TOKEN)
        signals.publish([GROUP, SERVICE])
        published_at = now_ms()
        time.sleep(PUBLISH_SETTLE_S)
        u1, u2 = str(uuid.uuid4()), str(uuid.uuid4())
        s1, s2, s3 = (str(uuid.uuid4()) for _ in range(3))
        t = published_at + 100
        events = [
            SampleEvent("page_view", u1, s1, t, "/"),
            SampleEvent("page_view", u1, s1, t + 10, "/a"),
            SampleEvent("page_ping", u1, s1, t + 20, "/a", scroll_y=120),
            SampleEvent("page_view", u1, s1, t + 30, "/b"),
            SampleEvent("page_view", u2, s2, t + 40, "/only"),
        ]
        produce_events(app, kafka_broker.bootstrap, events)
        expected = {s: _expected(events, s) for s in (s1, s2, s3)}
        for session in (s1, s2):
            eventually(
                lambda session=session: signals.get_service_attributes(
                    name=SERVICE.name, attribute_key="domain_sessionid", identifier=session
                ),
                lambda got, session=session: got == expected[session],
                f"(Python SDK) service attributes of {session}: {expected[session]}",
            )
        yield NodeScenario(
            node=NodeClient(script, worker.url),
            signals=signals,
            worker=worker,
            app=app,
            sessions=(s1, s2, s3),
            expected=expected,
        )
    finally:
        worker.stop()


def _batch_cell(value: Any) -> Any:
    """What getBatchServiceAttributes makes of one value: one-element lists unwrapped, an empty
    list undefined (null in JSON)."""
    if isinstance(value, list):
        return value if len(value) > 1 else (value[0] if value else None)
    return value


# --- the tests ----------------------------------------------------------------------------------


def test_get_service_attributes(node_scenario: NodeScenario) -> None:
    s1, s2, s3 = node_scenario.sessions
    for session in (s1, s2, s3):
        got = node_scenario.node.result(
            "getServiceAttributes",
            {"name": SERVICE.name, "attribute_key": "domain_sessionid", "identifier": session},
        )
        assert got == node_scenario.expected[session], session
        python = node_scenario.signals.get_service_attributes(
            name=SERVICE.name, attribute_key="domain_sessionid", identifier=session
        )
        assert got == python  # both SDKs read the same answer the same way


def test_get_group_attributes(node_scenario: NodeScenario) -> None:
    s1, s2, _ = node_scenario.sessions
    for session in (s1, s2):
        got = node_scenario.node.result(
            "getGroupAttributes",
            {
                "name": GROUP.name,
                "version": 1,
                "attributes": ["page_views", "paths"],
                "attribute_key": "domain_sessionid",
                "identifier": session,
            },
        )
        expected = node_scenario.expected[session]
        assert got == {k: expected[k] for k in ("domain_sessionid", "page_views", "paths")}


def test_get_batch_service_attributes(node_scenario: NodeScenario) -> None:
    sessions = list(node_scenario.sessions)
    got = node_scenario.node.result(
        "getBatchServiceAttributes",
        {"name": SERVICE.name, "attribute_key": "domain_sessionid", "identifiers": sessions},
    )
    expected = {
        column: [_batch_cell(node_scenario.expected[s][column]) for s in sessions]
        for column in node_scenario.expected[sessions[0]]
    }
    # The id without events: no list at all, or an empty one; either reads as null here.
    expected["paths"][2] = None
    assert got == expected


def test_a_wrong_token_is_an_error_naming_401(node_scenario: NodeScenario) -> None:
    answer = node_scenario.node.call(
        "getServiceAttributes",
        {
            "name": SERVICE.name,
            "attribute_key": "domain_sessionid",
            "identifier": node_scenario.sessions[0],
        },
        token="not-" + API_TOKEN,
    )
    assert answer["ok"] is False and "401" in answer["error"], answer
