"""``signals-stream dev``, the README's first command: it starts its own broker and a worker,
feeds live events that show up in a live user's table, and Ctrl-C leaves no process behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.workers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def _children_of(pid: int) -> set[int]:
    """Every process descending from ``pid`` (from /proc: no extra package)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def test_dev_shows_live_values_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    broker_port, web_port, site_port = free_port(), free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SIGNALS_")},
        "SIGNALS_BROKER": f"127.0.0.1:{broker_port}",
        "SIGNALS_WEB_PORT": str(web_port),
    }
    dev = subprocess.Popen(
        [sys.executable, "-m", "signals_stream.cli", "dev", "--rate", "50"]
        + ["--web-port", str(site_port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(dev.stdout or ()), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 150
        while not any("a live user" in line for line in output):
            assert dev.poll() is None, "".join(output)
            assert time.monotonic() < deadline, "".join(output)
            time.sleep(0.2)
        text = "".join(output)
        token = re.search(r"API token\s+(\S+)", text)[1]  # type: ignore[index]
        table_url = re.search(r"a live user\s+curl .* (http://\S+)", text)[1]  # type: ignore[index]
        # The demo shop and the console come first, and open with no other step.
        printed = [line.split() for line in text.splitlines()]
        site = f"http://127.0.0.1:{site_port}"
        first = printed.index(["demo", "shop", f"{site}/demo/"])
        assert printed[first + 1] == ["console", f"{site}/console/?token={token}"], text
        assert printed[first - 1] == [] and printed[first + 3][0] == "signals-stream", text
        assert httpx.get(f"{site}/demo/", timeout=5).status_code == 200
        console = httpx.get(f"{site}/console/?token={token}", follow_redirects=True, timeout=10)
        assert console.status_code == 200 and "demo_shopper" in console.text, console.text
        descendants = _children_of(dev.pid)
        assert len(descendants) >= 2, "a broker and a worker"
        headers = {"Authorization": f"Bearer {token}"}
        views = 0
        while views == 0:  # the feeder's events reach the printed user's table
            assert time.monotonic() < deadline, text
            answer = httpx.get(table_url, headers=headers, timeout=5)
            if answer.status_code == 200:
                views = answer.json()["attributes"]["page_views"]
            time.sleep(0.5)
    finally:
        dev.send_signal(signal.SIGINT)  # what Ctrl-C sends to the foreground process
        try:
            code = dev.wait(timeout=60)
        finally:
            if dev.poll() is None:
                dev.kill()
    assert code == 0, "".join(output)
    alive = {pid for pid in descendants if Path(f"/proc/{pid}").exists()}
    assert not alive, f"left running: {alive}"
