"""Container health check: exit 0 when this worker's ``/healthz`` answers 200, else 1.

The Docker image runs ``python -m signals_stream.ops.healthcheck`` as its HEALTHCHECK: the
standard library only, so the slim image needs no curl. The URL comes from the same settings
as the worker's (``SIGNALS_WEB_PORT``; a wildcard ``SIGNALS_WEB_HOST`` is asked on loopback).
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

__all__ = ["check", "main"]


def check(url: str, timeout_s: float = 4.0) -> tuple[bool, str]:
    """Whether ``url`` answers 200, and a short reason to print."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.status == 200, f"{response.status} {response.read(200)!r}"
    except urllib.error.HTTPError as exc:  # 503 while tables recover
        return False, f"{exc.code} {exc.read(200)!r}"
    except (OSError, ValueError) as exc:  # not listening yet, timeout, bad URL
        return False, repr(exc)


def main() -> int:
    from signals_stream.settings import load_settings

    healthy, reason = check(load_settings().web_url + "/healthz")
    print(reason)  # Docker keeps the last outputs in `docker inspect`
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
