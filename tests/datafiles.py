"""Where the shared real sample data lives, for tests.

``shared/data`` sits beside the repository (``<parent>/main`` and ``<parent>/shared``); the
``SIGNALS_TEST_DATA`` environment variable points elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DATA_DIR", "read_lines"]

DATA_DIR = Path(
    os.environ.get("SIGNALS_TEST_DATA")
    or Path(__file__).resolve().parents[1].parent / "shared" / "data"
)


def read_lines(relative: str) -> list[bytes]:
    """The records of a newline-delimited sample file, as Kafka would carry them.

    Args:
        relative: path under :data:`DATA_DIR`, e.g. ``kafka-live-viewer-profiles/micro.1.tsv``.

    Returns:
        One ``bytes`` per line, without its ``\\n`` (a final newline adds no empty record).
    """
    lines = (DATA_DIR / relative).read_bytes().split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines
