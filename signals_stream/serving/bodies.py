"""A request's JSON body, for both servers (no web framework here: ``signals-stream api``
imports no Faust)."""

from __future__ import annotations

from typing import Any

import orjson

from signals_stream.errors import DefinitionError

__all__ = ["parse_json_body"]


def parse_json_body(raw: bytes) -> Any:
    """Raises: DefinitionError: empty or not JSON (422, as for any invalid body)."""
    if not raw:
        raise DefinitionError("the request needs a JSON body")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise DefinitionError(f"the body is not valid JSON: {exc}") from None
