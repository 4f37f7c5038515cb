"""The image's HEALTHCHECK command against a stand-in /healthz."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from signals_stream.ops import healthcheck


class _Health(BaseHTTPRequestHandler):
    status = 503

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        body = b'{"status": "ok"}' if self.status == 200 else b'{"status": "starting"}'
        code = self.status if self.path == "/healthz" else 404
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:  # keep pytest's output clean
        pass


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_healthy_only_on_200(server: ThreadingHTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"http://127.0.0.1:{server.server_address[1]}/healthz"
    monkeypatch.setattr(_Health, "status", 503)
    healthy, reason = healthcheck.check(url)
    assert not healthy and reason.startswith("503") and "starting" in reason
    monkeypatch.setattr(_Health, "status", 200)
    assert healthcheck.check(url)[0]


def test_main_asks_the_configured_port_on_loopback(
    server: ThreadingHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIGNALS_WEB_HOST", "0.0.0.0")  # as in the image
    monkeypatch.setenv("SIGNALS_WEB_PORT", str(server.server_address[1]))
    monkeypatch.setattr(_Health, "status", 200)
    assert healthcheck.main() == 0
    monkeypatch.setattr(_Health, "status", 503)
    assert healthcheck.main() == 1


def test_nothing_listening_is_unhealthy() -> None:
    healthy, reason = healthcheck.check("http://127.0.0.1:9/healthz", timeout_s=1)
    assert not healthy and reason
