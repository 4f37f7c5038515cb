"""What a cleanly stopped worker leaves beside its RocksDB databases for its next start.

At a clean stop (after the producer flush) the worker writes which entity partitions it held
and, for each, the last changelog offset its database holds. At the next start that file is
taken (read, then deleted: it speaks for one start only) and each partition whose changelog
still ends right after that offset is known to be exactly the local database: nobody wrote
to it since. Those partitions can be served while the group join is pending
(``agents.early_serving``). A missing or unreadable file means nothing is known.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MANIFEST_NAME", "StopManifest", "take_manifest", "write_manifest"]

MANIFEST_NAME = "clean-stop.json"


@dataclass(frozen=True, slots=True)
class StopManifest:
    """The changelog the offsets are of, and each held partition's last offset (or -1 when
    the partition's changelog was empty)."""

    changelog: str
    offsets: Mapping[int, int]

    def unchanged(self, ends: Mapping[int, int]) -> list[int]:
        """The partitions whose changelog ends (``ends``, last offset + 1) right after the
        offset recorded here, in order."""
        return sorted(p for p, last in self.offsets.items() if ends.get(p) == last + 1)


def write_manifest(directory: Path, manifest: StopManifest) -> None:
    """Write ``manifest`` into ``directory`` atomically (a crash leaves the old file or none)."""
    directory.mkdir(parents=True, exist_ok=True)
    body = {
        "changelog": manifest.changelog,
        "offsets": {str(p): last for p, last in sorted(manifest.offsets.items())},
    }
    tmp = directory / f".{MANIFEST_NAME}.tmp"
    tmp.write_text(json.dumps(body))
    os.replace(tmp, directory / MANIFEST_NAME)


def take_manifest(directory: Path, changelog: str) -> StopManifest | None:
    """The manifest in ``directory`` if it is about ``changelog``, removing the file."""
    path = directory / MANIFEST_NAME
    try:
        body = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
    try:
        offsets = {int(p): int(last) for p, last in body["offsets"].items()}
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    if body.get("changelog") != changelog:
        return None
    return StopManifest(changelog, offsets)
