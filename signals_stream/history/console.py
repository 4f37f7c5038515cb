"""The terminal side of the history commands: a progress bar for the read, rich tables."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from signals_stream.history.reading import Progress as OnProgress
from signals_stream.kafka.log_window import LogWindow

__all__ = ["columns_table", "preview_table", "read_progress"]


@contextmanager
def read_progress(console: Console) -> Iterator[OnProgress]:
    """A progress bar of the records fetched out of the window's range, on ``console``."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task("reading the log", total=None)

        def update(window: LogWindow) -> None:
            bar.update(
                task,
                description=f"reading {window.topic}",
                total=window.total,
                completed=window.read,
            )

        yield update


def columns_table(title: str, columns: Mapping[str, Sequence[Any]]) -> Table:
    """A columnar answer (``{column: [values]}``, the key first) as a table, one row per id."""
    table = Table(title=title)
    for name in columns:
        table.add_column(name, overflow="fold")
    for row in zip(*columns.values(), strict=True):
        table.add_row(*(_cell(value) for value in row))
    return table


def _cell(value: Any) -> str:
    if value is None:
        return "[dim]null[/dim]"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def preview_table(rule: str, answer: Mapping[str, Any]) -> Table:
    """An intervention preview's answer as a two-column table."""
    firings = answer["firings"]
    table = Table(title=f"preview of {rule}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", overflow="fold")
    table.add_row("entities scanned now", f"{answer['scanned_count']:,}")
    table.add_row("matching now", f"{answer['matched_count']:,}")
    for key, ids in answer["matches"].items():
        table.add_row(f"sample of {key}", ", ".join(ids) or "[dim]none[/dim]")
    table.add_row(f"firings over {firings['window']}", f"{firings['count']:,}")
    table.add_row("entities that fired", f"{firings['entities']:,}")
    for key, n in firings["targets"].items():
        table.add_row(f"targets ({key})", f"{n:,}")
    table.add_row("records read", f"{firings['records_read']:,}")
    return table
