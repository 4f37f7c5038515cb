"""The console's token check and the demo build's refusal without npm (no worker, no npm)."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from signals_stream.collector.server import CollectorStats
from signals_stream.demo import build
from signals_stream.demo.console import COOKIE, ConsoleFeeds, add_console_routes
from signals_stream.errors import SignalsStreamError

TOKEN = "console-test-token"


async def test_console_needs_the_token() -> None:
    app = web.Application()
    # Nothing listens on port 9: the worker's answers are failures, the auth is what is tested.
    add_console_routes(
        app,
        worker_url="http://127.0.0.1:9",
        token=TOKEN,
        feeds=ConsoleFeeds(),
        collector_stats=CollectorStats(),
    )
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/console/api/health")).status == 401
        assert (await client.get("/console/")).status == 401
        assert (await client.get("/console/?token=wrong")).status == 401
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        health = await client.get("/console/api/health", headers=bearer)
        assert health.status == 200
        assert (await health.json())["worker"] is None  # the worker did not answer
        login = await client.get(f"/console/?token={TOKEN}", allow_redirects=False)
        assert login.status == 302 and login.headers["Location"] == "/console/"
        assert login.cookies[COOKIE].value == TOKEN
        # The cookie now stands for the token (the client's jar sends it back).
        assert (await client.get("/console/api/health")).status == 200
        missing = await client.get("/console/api/entity?key=domain_userid")
        assert missing.status == 400 and "id" in (await missing.json())["message"]


def test_build_without_npm_fails_clearly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(build, "_INSTALLED", tmp_path / "never-installed")
    monkeypatch.setattr(build.shutil, "which", lambda name: None)
    with pytest.raises(SignalsStreamError, match="npm is not installed"):
        build.build_demo(say=lambda _: None)
