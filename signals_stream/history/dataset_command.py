"""``signals-stream dataset build SPEC.yaml --from log --out FILE``: the CLI side of the log
build (``history/dataset_log.py``). SPEC.yaml is the SDK's ``DatasetBundleRequest`` body as
YAML (``anchors``, ``attributes``; event anchors as ``anchors: {mode: event, ...}``).
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from signals_stream.errors import DefinitionError
from signals_stream.kafka.log_window import LogWindow
from signals_stream.settings import Settings
from signals_stream.warehouse.urls import parse_warehouse_url

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
    """``--out FILE`` (.parquet/.csv, or .duckdb with ``--table``), or ``--table`` alone: the
    table on ``SIGNALS_WAREHOUSE_URL``. User-supplied anchors come from ``--anchors FILE``,
    else from the request's ``anchors.source`` table on that warehouse."""
    from signals_stream.datasets.command import load_spec
    from signals_stream.datasets.models import UserSuppliedAnchors
    from signals_stream.history import dataset_warehouse
    from signals_stream.history.dataset_log import build_from_log  # DuckDB: only when building

    request = load_spec(args.spec)
    to_warehouse = args.out is None and args.table is not None
    if args.out is None and not to_warehouse:
        raise DefinitionError(
            "--out: required by dataset build (.parquet, .csv or .duckdb), "
            "unless --table names a table on the warehouse"
        )
    if not to_warehouse and args.table is None and args.out.suffix not in (".parquet", ".csv"):
        raise DefinitionError("--out: a .parquet or .csv file, or a .duckdb file with --table")
    start_ms = 0
    if args.since is not None:
        start_ms = int(datetime.fromisoformat(args.since).timestamp() * 1000)
    err = Console(stderr=True)
    progress = contextlib.nullcontext((None, None)) if args.no_progress else _progress(err)
    with tempfile.TemporaryDirectory(prefix="signals-dataset-") as scratch:
        anchors_file = args.anchors
        spec = request.anchors
        if anchors_file is None and isinstance(spec, UserSuppliedAnchors):
            anchors_file = Path(scratch) / "anchors.duckdb"
            keys = dict.fromkeys(g.attribute_key.name for g in request.attributes.attribute_groups)
            dataset_warehouse.export_anchors(spec, settings, list(keys), anchors_file)
        out = Path(scratch) / "dataset.parquet" if to_warehouse else args.out
        with progress as (on_read, on_fold):
            build = build_from_log(
                request,
                settings,
                out,
                anchors_file=anchors_file,
                start_ms=start_ms,
                out_table=None if to_warehouse else args.table,
                on_read=on_read,
                on_fold=on_fold,
            )
        where = str(args.out)
        if to_warehouse:
            build.rows = dataset_warehouse.write_table(out, args.table, settings)
            where = f"{args.table} on {parse_warehouse_url(settings.warehouse).safe}"
    err.print(
        f"{build.rows:,} rows ({build.anchors:,} anchors) from {build.records:,} records "
        f"({build.bad:,} refused) in {build.seconds_read + build.seconds_fold:.1f} s -> {where}"
    )
    return 0
