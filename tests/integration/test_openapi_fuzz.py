"""Schema-driven fuzzing of the HTTP API: schemathesis reads ``/api/v1/openapi.json`` of a real
worker and sends requests generated from it, valid ones and invalid ones, with the bearer token.

* No request may be answered with a 5xx.
* Every 4xx carries a JSON object naming the problem (``detail``, ``error`` or ``message``), as
  the SDKs surface it (``SignalsAPIError(status, payload)``).
* Every ``/api/v1`` answer is JSON.

Whether a "negative" (schema-violating) request is refused is not checked: schemathesis often
breaks only the security header, which the fixed token then overrides, so many of them are
valid requests in the end. Runtime is bounded: a few examples per operation and mode, no
shrinking, and an overall budget; every problem found is collected and reported together, with
a curl command to replay it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, Phase, given, settings

from tests.integration.workers import API_TOKEN, running_worker, stream_app

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis (test extra) is needed")
from schemathesis import APIOperation, Case, GenerationMode  # noqa: E402

# Worker healthy (90 s), a 100 s fuzzing budget and the operation running at its end.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

EXAMPLES_PER_MODE = 12
BUDGET_S = 100.0
# The SSE subscription answers with an endless stream: it cannot be fuzzed request/response
# (tests/integration/test_sse.py covers it).
STREAMING = {("GET", "/api/v1/interventions")}
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


@dataclass
class Findings:
    problems: dict[str, list[str]] = field(default_factory=dict)
    requests: int = 0
    statuses: dict[int, int] = field(default_factory=dict)

    def add(self, operation: str, problem: str) -> None:
        found = self.problems.setdefault(operation, [])
        if len(found) < 3:  # a few examples per operation are enough to reproduce
            found.append(problem)


def _json_body(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _check(case: Case, status: int, headers: Any, raw: bytes) -> list[str]:
    problems = []
    body = _json_body(raw)
    if status >= 500:
        problems.append(f"server error {status}")
    if 400 <= status < 500 and not (
        isinstance(body, dict) and any(body.get(k) for k in ("detail", "error", "message"))
    ):
        problems.append(f"{status} without a JSON message")
    if status < 500 and case.operation.path.startswith("/api/v1/") and body is None:
        problems.append(f"{status} answer is not JSON ({headers.get('Content-Type')})")
    return problems


def _fuzz(case: Case, base_url: str, mode: GenerationMode, findings: Findings) -> None:
    response = case.call(base_url=base_url, headers=AUTH, timeout=15)
    findings.requests += 1
    findings.statuses[response.status_code] = findings.statuses.get(response.status_code, 0) + 1
    for problem in _check(case, response.status_code, response.headers, response.content):
        text = response.content[:300].decode(errors="replace")
        curl = case.as_curl_command(headers=AUTH, base_url=base_url)
        findings.add(
            f"{case.operation.method.upper()} {case.operation.path}",
            f"[{mode.value}] {problem}: {text}\n    {curl}",
        )


def _out_of_range(value: Any) -> Any:
    """``value`` with every integer moved just past 64 bits (what JSON allows and many
    encoders, orjson among them, refuse)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return 2**64 if value >= 0 else -(2**64)
    if isinstance(value, list):
        return [_out_of_range(v) for v in value]
    if isinstance(value, dict):
        return {k: _out_of_range(v) for k, v in value.items()}
    return value


def _runner(
    operation: APIOperation,
    mode: GenerationMode,
    base_url: str,
    findings: Findings,
    *,
    examples: int = EXAMPLES_PER_MODE,
    big_integers: bool = False,
) -> Callable[[], None]:
    """A Hypothesis test sending generated requests for one operation and mode (with
    ``big_integers``: valid bodies whose integers are out of the 64-bit range)."""

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Case) -> None:
        if big_integers:
            case.body = _out_of_range(case.body)
        _fuzz(case, base_url, mode, findings)

    return run


def test_generated_requests_get_no_server_error(kafka_broker: Any, tmp_path: Path) -> None:
    app = stream_app(kafka_broker, "fuzz")
    with running_worker(app.env(tmp_path / "state"), tmp_path / "worker.log") as worker:
        status, raw = worker.get("/api/v1/openapi.json")
        assert status == 200, raw[:300]
        document = json.loads(raw)
        assert str(document.get("openapi", "")).startswith("3."), document.get("openapi")
        status, page = worker.get("/docs/")
        assert status == 200 and b"openapi.json" in page, page[:300]

        schema = schemathesis.openapi.from_dict(document)
        operations = [result.ok() for result in schema.get_all_operations()]
        fuzzed = [op for op in operations if (op.method.upper(), op.path) not in STREAMING]
        paths = {op.path for op in fuzzed}
        # The SDKs' endpoints are described (signals.md §2.2).
        for path in (
            "/api/v1/get-online-attributes",
            "/api/v1/registry/attribute_groups/",
            "/api/v1/registry/services/",
            "/api/v1/registry/interventions/",
            "/api/v1/registry/attribute_keys/",
        ):
            assert path in paths, f"{path} missing from the OpenAPI document: {sorted(paths)}"

        findings = Findings()
        deadline = time.monotonic() + BUDGET_S
        skipped: list[str] = []
        for operation in fuzzed:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                if time.monotonic() > deadline:
                    skipped.append(f"{operation.method.upper()} {operation.path} [{mode.value}]")
                    continue
                try:
                    _runner(operation, mode, worker.url, findings)()
                except schemathesis.errors.SchemathesisError as exc:  # unusable for this mode
                    skipped.append(f"{operation.method.upper()} {operation.path}: {exc}")
                except requests.RequestException as exc:  # no answer at all: reported
                    findings.add(
                        f"{operation.method.upper()} {operation.path}",
                        f"[{mode.value}] request failed: {exc!r}",
                    )
        # Integers beyond 64 bits in every body (random generation rarely reaches them).
        for operation in fuzzed:
            if operation.body and time.monotonic() < deadline:
                _runner(
                    operation,
                    GenerationMode.POSITIVE,
                    worker.url,
                    findings,
                    examples=3,
                    big_integers=True,
                )()
        report = "\n".join(
            f"{operation}:\n  " + "\n  ".join(problems)
            for operation, problems in sorted(findings.problems.items())
        )
        assert findings.requests > 0
        assert worker.process.poll() is None, "the worker survived the fuzzing"
        assert not findings.problems, (
            f"{len(findings.problems)} operations misbehave ({findings.requests} requests, "
            f"statuses {findings.statuses}, skipped {skipped}):\n{report}"
        )
