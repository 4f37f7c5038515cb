"""An external sort: tuples kept in memory up to a bound, then in sorted runs on disk, merged.

A dataset build sorts every event of the log by ``(entity, effective time, event id)``; 10
million events do not fit in memory, so runs of ``run_size`` tuples are sorted and written
(``marshal``: plain tuples of str, int, bytes, float, None) to a temporary directory, and
:meth:`Spill.sorted` merges them lazily (``heapq.merge``), one tuple per run in memory.
"""

from __future__ import annotations

import heapq
import marshal
import tempfile
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["Spill"]

Item = tuple[Any, ...]


class Spill:
    """Add tuples in any order; read them back sorted once."""

    def __init__(self, directory: Path | None = None, run_size: int = 200_000) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="signals-spill-", dir=directory))
        self._run_size = run_size
        self._buffer: list[Item] = []
        self._runs: list[Path] = []
        self.count = 0

    def add(self, item: Item) -> None:
        self._buffer.append(item)
        self.count += 1
        if len(self._buffer) >= self._run_size:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        self._buffer.sort()
        path = self._dir / f"run-{len(self._runs):05d}"
        with path.open("wb") as out:
            for item in self._buffer:
                marshal.dump(item, out)
        self._runs.append(path)
        self._buffer = []

    def sorted(self) -> Generator[Item, None, None]:
        """Every tuple added, in order. The runs are removed when the iteration ends."""
        if not self._runs:
            self._buffer.sort()
            yield from self._buffer
            self._buffer = []
            return
        self._flush()
        files = [path.open("rb") for path in self._runs]
        try:
            yield from heapq.merge(*(_read(f) for f in files))
        finally:
            for f in files:
                f.close()
            self.close()

    def close(self) -> None:
        for path in self._runs:
            path.unlink(missing_ok=True)
        self._runs = []
        self._buffer = []
        if self._dir.exists():
            for leftover in self._dir.iterdir():
                leftover.unlink()
            self._dir.rmdir()


def _read(f: BinaryIO) -> Iterator[Item]:
    while True:
        try:
            yield marshal.load(f)
        except EOFError:
            return
