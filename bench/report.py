"""Figures a benchmark leaves for ``run_all.py``'s summary table: ``bench/out/NAME.json``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

OUT = Path(__file__).with_name("out")


def save(name: str, figures: dict[str, Any]) -> None:
    OUT.mkdir(exist_ok=True)
    (OUT / f"{name}.json").write_bytes(orjson.dumps(figures, option=orjson.OPT_INDENT_2))


def load(name: str) -> dict[str, Any] | None:
    path = OUT / f"{name}.json"
    return orjson.loads(path.read_bytes()) if path.exists() else None
