"""Headless Debian chromium (Playwright on the system browser, no download) and the dev stack's
web site (``signals-stream collector --demo``) beside a real worker, for the browser tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

__all__ = ["ARTIFACTS", "CHROMIUM", "WebSite", "chromium_page", "running_site"]

CHROMIUM = os.environ.get("SIGNALS_TEST_CHROMIUM", "/usr/bin/chromium")
# Screenshots and page logs of failed browser tests.
ARTIFACTS = Path(
    os.environ.get("SIGNALS_TEST_ARTIFACTS")
    or Path(__file__).resolve().parents[2] / "test-artifacts"
)


class WebSite:
    """``signals-stream collector --demo`` in its own session, stopped by its own pid."""

    def __init__(self, env: dict[str, str], port: int, log_path: Path) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "signals_stream.cli",
                "collector",
                "--demo",
                "--port",
                str(port),
            ],
            env={**os.environ, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        """Until /demo/ answers (the first start runs npm ci and esbuild)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the site exited:\n{self.log_path.read_text()[-3000:]}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(self.url + "/demo/", timeout=2) as answer:
                    if answer.status == 200:
                        return
            time.sleep(0.3)
        raise AssertionError(f"the site is not up after {timeout_s}s")

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, 15)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, 9)
                self.process.wait()
        self._log.close()


@contextlib.contextmanager
def running_site(env: dict[str, str], port: int, log_path: Path) -> Iterator[WebSite]:
    site = WebSite(env, port, log_path)
    try:
        site.wait_ready()
        yield site
    finally:
        site.stop()


@contextlib.contextmanager
def chromium_page(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A page of a fresh headless chromium; on failure a screenshot and the console log go to
    :data:`ARTIFACTS`."""
    if not Path(CHROMIUM).exists() or shutil.which("npm") is None:
        pytest.fail(f"the browser tests need Debian's chromium at {CHROMIUM} and npm (.ci/run)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        console: list[str] = []
        page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
        try:
            yield page
        except BaseException:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            name = request.node.name.replace("/", "_")
            with contextlib.suppress(Exception):
                page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
            (ARTIFACTS / f"{name}.console.txt").write_text("\n".join(console))
            raise
        finally:
            browser.close()
