"""Shared fixtures of the intervention tests: captured SDK bodies and a minimal group view."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from signals_stream.interventions import RuleIntervention
from tests.datafiles import DATA_DIR

__all__ = ["CART_ABANDON", "FakeGroup", "capture_requests", "capture_result", "rule"]

_CAPTURE = DATA_DIR / "signals-sdk-wire-capture" / "capture-signals-py-0.4.10.json"


@cache
def _capture() -> list[dict[str, Any]]:
    return json.loads(_CAPTURE.read_text())


def capture_requests(path_prefix: str) -> list[tuple[str, dict[str, Any]]]:
    """``(label, body)`` of every captured request with a body whose path starts with the prefix."""
    return [
        (f"{step['step']}#{n}:{request['method']}", request["body"])
        for step in _capture()
        for n, request in enumerate(step["requests"])
        if request["path"].startswith(path_prefix) and request["body"] is not None
    ]


def capture_result(step: str) -> Any:
    """What the capture's mock server returned for ``step``."""
    return next(s["result"] for s in _capture() if s["step"] == step)


@dataclass(frozen=True)
class FakeGroup:
    """A published group version as ``matcher.GroupInfo`` sees it."""

    key_name: str
    attribute_names: tuple[str, ...]


def rule(criteria: Any, *, name: str = "r", version: int = 1, **fields: Any) -> RuleIntervention:
    """A published rule with the given criteria."""
    return RuleIntervention(
        name=name, version=version, is_published=True, criteria=criteria, **fields
    )


CART_ABANDON: dict[str, Any] = capture_requests("/api/v1/registry/interventions/")[0][1]
