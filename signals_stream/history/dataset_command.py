"""``signals-stream dataset build SPEC.yaml --from log --out FILE``: the CLI side of the log
build (``history/dataset_log.py``). SPEC.yaml is the SDK's ``DatasetBundleRequest`` body as
YAML (``anchors``, ``attributes``; event anchors as ``anchors: {mode: event, ...}``).
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from signals_stream.errors import DefinitionError
from signals_stream.kafka.log_window import LogWindow
from signals_stream.settings import Settings

if TYPE_CHECKING:
    from signals_stream.history.dataset_log import OnFold, OnRead

__all__ = ["run_dataset_build"]


@contextlib.contextmanager
def _progress(console: Console) -> Iterator[tuple[OnRead, OnFold]]:
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        reading = bar.add_task("reading the log", total=None)
        folding = bar.add_task("anchors", total=None, visible=False)

        def on_read(window: LogWindow) -> None:
            bar.update(reading, description=f"reading {window.topic}", total=window.total,
                       completed=window.read)  # fmt: skip

        def on_fold(done: int, total: int) -> None:
            bar.update(folding, visible=True, total=total, completed=done)

        yield on_read, on_fold


def run_dataset_build(args: argparse.Namespace, settings: Settings) -> int:
    from signals_stream.datasets.command import load_spec
    from signals_stream.history.dataset_log import build_from_log  # DuckDB: only when building

    request = load_spec(args.spec)
    if args.out is None:
        raise DefinitionError("--out: required by dataset build (.parquet, .csv or .duckdb)")
    if args.table is None and args.out.suffix not in (".parquet", ".csv"):
        raise DefinitionError("--out: a .parquet or .csv file, or a .duckdb file with --table")
    start_ms = 0
    if args.since is not None:
        start_ms = int(datetime.fromisoformat(args.since).timestamp() * 1000)
    err = Console(stderr=True)
    progress = contextlib.nullcontext((None, None)) if args.no_progress else _progress(err)
    with progress as (on_read, on_fold):
        build = build_from_log(
            request,
            settings,
            args.out,
            anchors_file=args.anchors,
            start_ms=start_ms,
            out_table=args.table,
            on_read=on_read,
            on_fold=on_fold,
        )
    err.print(
        f"{build.rows:,} rows ({build.anchors:,} anchors) from {build.records:,} records "
        f"({build.bad:,} refused) in {build.seconds_read + build.seconds_fold:.1f} s -> {args.out}"
    )
    return 0
