"""``signals-stream dataset sql|run|build SPEC.yaml``: training datasets from the command line.

``SPEC.yaml`` is the body of ``POST datasets/sql`` as YAML (the SDK's ``DatasetBundleRequest``:
``anchors``, ``attributes``, ``dataset``...); a top-level ``event_anchors`` mapping may stand for
``anchors`` with ``mode: event``.

* ``sql``: print the bundle's SQL for the warehouse's dialect (``--dialect``), or write one
  ``<table>.sql`` per stage into ``--out DIR``;
* ``run``: build the tables on the configured warehouse;
* ``build --from warehouse --out FILE.parquet|csv``: ``run``, then stream the dataset table
  into the file in batches (DuckDB writes it itself), so no build holds its rows in memory;
* ``build --from log`` is ``history/dataset_command.py`` (the same dataset replayed from the
  Kafka log through the engine); ``cli.py`` sends it there.
"""

from __future__ import annotations

import csv
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from signals_stream.datasets.models import DatasetBundleRequest
from signals_stream.errors import DefinitionError
from signals_stream.settings import Settings

__all__ = [
    "EXPORT_BATCH_ROWS",
    "build_from_warehouse",
    "load_spec",
    "print_sql",
    "run_spec",
    "write_rows",
]

EXPORT_BATCH_ROWS = 10_000
Progress = Callable[[str, int | None], None]  # (stage, rows so far)


def load_spec(path: Path) -> DatasetBundleRequest:
    """The request in ``path`` (YAML or JSON).

    Raises:
        DefinitionError: not a mapping, or not a valid request (naming the field).
    """
    import yaml

    try:
        body = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise DefinitionError(f"{path}: {exc}") from None
    if not isinstance(body, dict):
        raise DefinitionError(f"{path}: a dataset spec is a mapping (DatasetBundleRequest)")
    if "event_anchors" in body:
        if "anchors" in body:
            raise DefinitionError(f"{path}: give anchors or event_anchors, not both")
        body = {**body, "anchors": {**body.pop("event_anchors"), "mode": "event"}}
    return DatasetBundleRequest.parse(body)


def print_sql(request: DatasetBundleRequest, settings: Settings, out: Path | None) -> str:
    """The bundle's SQL (files in ``out`` when given: ``<table>.sql`` per stage)."""
    from signals_stream.datasets.bundle import create_table_sql
    from signals_stream.datasets.runs import connect, prepare

    conn = connect(settings)
    try:
        bundle = prepare(request, conn, settings, dialect=request.dialect)
    finally:
        conn.close()
    texts = []
    for stage in bundle.stages:
        text = ";\n".join(create_table_sql(stage, bundle.dialect)) + ";\n"
        texts.append(f"-- {stage.table.table}\n{text}")
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            (out / f"{stage.table.table}.sql").write_text(text, encoding="utf-8")
    return "\n".join(texts)


def run_spec(request: DatasetBundleRequest, settings: Settings, progress: Progress) -> Any:
    """Build the tables on the warehouse; (the bundle, the dataset's row count)."""
    from signals_stream.datasets.runs import connect, execute, prepare

    conn = connect(settings, lambda text: progress(text, None))
    try:
        progress("compiling", None)
        bundle = prepare(request, conn, settings)
        rows = execute(bundle, conn, lambda table: progress(f"building {table}", None))
        return bundle, rows, conn
    except BaseException:
        conn.close()
        raise


def _format(out: Path) -> str:
    suffix = out.suffix.lower().lstrip(".")
    if suffix not in ("parquet", "csv"):
        raise DefinitionError(f"--out: {out.name} is neither .parquet nor .csv")
    return suffix


def write_rows(
    columns: Sequence[str],
    batches: Iterable[Sequence[Sequence[Any]]],
    out: Path,
    progress: Progress,
) -> int:
    """Write rows arriving in batches to ``out`` (``.csv`` or ``.parquet``), never holding
    more than a batch: CSV directly, Parquet through a DuckDB file on disk. The row count."""
    kind = _format(out)
    written = 0
    with tempfile.TemporaryDirectory(prefix="signals-dataset-") as scratch:
        target = out if kind == "csv" else Path(scratch) / "rows.csv"
        with target.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(columns)
            for batch in batches:
                writer.writerows(_csv_row(r) for r in batch)
                written += len(batch)
                progress("writing", written)
        if kind == "parquet":
            import duckdb  # the edge

            with duckdb.connect(str(Path(scratch) / "convert.duckdb")) as con:
                con.execute("SET TimeZone = 'UTC'")
                con.execute(
                    "COPY (SELECT * FROM read_csv_auto(?, header = true)) TO "
                    f"'{_sql_path(out)}' (FORMAT PARQUET)",
                    [str(target)],
                )
    return written


def _csv_row(row: Sequence[Any]) -> list[Any]:
    import orjson

    return [orjson.dumps(v).decode() if isinstance(v, list | dict) else v for v in row]


def _sql_path(path: Path) -> str:
    return str(path.resolve()).replace("'", "''")


def build_from_warehouse(
    request: DatasetBundleRequest, settings: Settings, out: Path, progress: Progress
) -> int:
    """Build the dataset on the warehouse, then stream its table into ``out``."""
    from signals_stream.datasets.runs import table_sql

    kind = _format(out)
    bundle, rows, conn = run_spec(request, settings, progress)
    try:
        source = f"SELECT * FROM {table_sql(bundle.dataset.table, conn.engine)}"
        if conn.engine == "duckdb":  # DuckDB writes the file itself, streaming
            progress("writing", None)
            options = "FORMAT PARQUET" if kind == "parquet" else "FORMAT CSV, HEADER"
            conn.replace([f"COPY ({source}) TO '{_sql_path(out)}' ({options})"])
            progress("writing", rows)
            return int(rows)
        columns, batches = conn.cursor_batches(source, EXPORT_BATCH_ROWS)
        return write_rows(columns, batches, out, progress)
    finally:
        conn.close()


def run_command(args: Any, settings: Settings) -> int:
    """The ``dataset`` subcommand (``cli.py``); progress on stderr, results on stdout."""
    import orjson
    from rich.console import Console
    from rich.progress import Progress as Bar
    from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

    from signals_stream.warehouse import WarehouseError

    request = load_spec(args.spec)
    if args.action == "sql":
        if args.dialect is not None:
            request = request.model_copy(update={"dialect": args.dialect})
        text = print_sql(request, settings, args.out)
        if args.out is None:
            print(text)
        return 0
    err = Console(stderr=True)
    with Bar(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err
    ) as bar:
        task = bar.add_task("dataset: starting", total=None)

        def progress(stage: str, rows: int | None) -> None:
            counted = "" if rows is None else f" ({rows:,} rows)"
            bar.update(task, description=f"dataset: {stage}{counted}")

        try:
            if args.action == "run":
                bundle, rows, conn = run_spec(request, settings, progress)
                conn.close()
                ref = bundle.dataset.table
                result = {"dataset": f"{ref.schema}.{ref.table}", "rows": rows}
            else:
                if args.out is None:
                    raise DefinitionError("--out: required by dataset build (.parquet or .csv)")
                rows = build_from_warehouse(request, settings, args.out, progress)
                result = {"out": str(args.out), "rows": rows, "from": args.source}
        except WarehouseError as exc:
            bar.stop()
            print(f"signals-stream dataset {args.action}: {exc}", file=sys.stderr)
            return 1
    print(orjson.dumps(result).decode())
    return 0
