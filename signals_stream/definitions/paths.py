"""The JSONPath subset of event and entity property paths.

Signals accepts dot notation and ``[n]`` indexes, optionally rooted at ``$``: ``price``,
``$.user.profile.name``, ``$.events[0].items[1].value``, ``[0].id``. The whole document (``$``)
and bracket-quoted keys (``['x']``) are rejected, as in the Signals schema. A path compiles once
to a tuple of steps (``str`` = object key, ``int`` = list index) that :func:`extract` walks.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["PathStep", "compile_path", "extract", "format_path"]

PathStep = str | int

# A key is anything but the separators; an index is a (possibly negative) integer.
_TOKEN = re.compile(r"\.([^.\[\]]+)|\[(-?\d+)\]")


def compile_path(path: str) -> tuple[PathStep, ...]:
    """Compile a property path into steps.

    Args:
        path: e.g. ``$.items[0].sku`` or ``price``.

    Returns:
        The steps, e.g. ``("items", 0, "sku")``.

    Raises:
        ValueError: the path is empty, is ``$`` alone, quotes a key, uses wildcards, filters or
            recursive descent, or has an empty segment.
    """
    if not path or path.strip() != path:
        raise ValueError(f"path {path!r} must be non-empty without surrounding spaces")
    if re.search(r"\[\s*['\"]", path):
        raise ValueError(f"path {path!r}: bracket-quoted keys are not supported; use dot notation")
    body = path
    if body.startswith("$"):
        body = body[1:]
        if not body:
            raise ValueError("path '$' (the whole document) is not allowed")
        if body[0] not in ".[":
            raise ValueError(f"path {path!r}: '$' must be followed by '.' or '['")
    elif not body.startswith("["):
        body = "." + body
    steps: list[PathStep] = []
    pos = 0
    while pos < len(body):
        match = _TOKEN.match(body, pos)
        if match is None:
            raise ValueError(
                f"path {path!r}: unsupported syntax at {body[pos:]!r} "
                "(only '.key' and '[n]' are allowed)"
            )
        key, index = match.groups()
        if key is not None:
            if key == "*":
                raise ValueError(f"path {path!r}: wildcards are not supported")
            steps.append(key)
        else:
            steps.append(int(index))
        pos = match.end()
    return tuple(steps)


def format_path(steps: tuple[PathStep, ...]) -> str:
    """The canonical text of compiled steps (``$.items[0].sku``), used for hashing."""
    return "$" + "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in steps)


def extract(data: Any, steps: tuple[PathStep, ...]) -> Any:
    """Walk ``steps`` into decoded JSON.

    Args:
        data: a dict (event or entity data) or any JSON value.
        steps: from :func:`compile_path`.

    Returns:
        The value found, or ``None`` when a key is missing, an index is out of range or a step
        meets the wrong container type. Negative indexes count from the end.
    """
    for step in steps:
        if isinstance(step, str):
            if not isinstance(data, dict):
                return None
            data = data.get(step)
        else:
            if not isinstance(data, list):
                return None
            try:
                data = data[step]
            except IndexError:
                return None
        if data is None:
            return None
    return data
