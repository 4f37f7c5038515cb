"""``signals-stream batch sql|run GROUP``: which group, which columns, and the console side.

The group comes from a definitions file (``--definitions``, else ``SIGNALS_DEFINITIONS``), else
from the published registry (the registry log topic, as ``sync run`` reads it). Its latest
version unless ``--version``. Batch groups and stream groups alike compile (a stream group's
attributes computed over the warehouse's history).
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from signals_stream.batch.compile import EventsTable, compile_group, parse_table_ref
from signals_stream.batch.dialects import DialectName
from signals_stream.definitions import AttributeGroup
from signals_stream.errors import DefinitionError
from signals_stream.settings import Settings
from signals_stream.warehouse import TableRef, parse_warehouse_url

__all__ = ["find_group", "print_sql", "run_command"]


async def _registry_groups(settings: Settings) -> list[AttributeGroup]:
    from signals_stream.sync.oneshot import read_registry

    log = await read_registry(settings)
    entries = log.registry.list("attribute_groups")
    return [e.model for e in entries if e.model.is_published]


def find_group(
    settings: Settings, name: str, version: int | None, definitions: Path | None
) -> AttributeGroup:
    """The group ``name`` (latest version, or ``version``) with attributes.

    Raises:
        DefinitionError: no such group, or one without attributes (external batch).
    """
    source = definitions or settings.definitions
    if source is not None:
        from signals_stream.registry.loader import load_definitions

        groups = list(load_definitions(source, resolve=False).groups)
        where = str(source)
    else:
        groups = asyncio.run(_registry_groups(settings))
        where = "the published registry"
    found = sorted(
        (g for g in groups if g.name == name and version in (None, g.version)),
        key=lambda g: g.version,
    )
    if not found:
        which = "" if version is None else f" version {version}"
        raise DefinitionError(f"no attribute group {name!r}{which} in {where}")
    group = found[-1]
    if not group.attributes:
        raise DefinitionError(
            f"attribute group {group.full_name} is an external batch group: its table is "
            "synced as it is (signals-stream sync run), there is nothing to compute"
        )
    return group


def _columns_file(path: Path) -> dict[str, str]:
    """``name type`` per line (``information_schema.columns`` exported); a bare name is
    a JSON column when self-describing, else text."""
    types: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.replace(",", " ").split(None, 1)
        if not parts or parts[0].startswith("#"):
            continue
        default = "json" if parts[0].startswith(("contexts_", "unstruct_event_")) else "text"
        types[parts[0]] = parts[1].strip() if len(parts) > 1 else default
    return types


def _warehouse_columns(settings: Settings, events: TableRef) -> dict[str, str]:
    from signals_stream.warehouse import open_warehouse

    with open_warehouse(settings.warehouse) as warehouse:
        return warehouse.columns(events)


def print_sql(
    group: AttributeGroup,
    settings: Settings,
    *,
    dialect: DialectName | None,
    events_table: str | None,
    columns: Path | None,
) -> str:
    """The group's SQL in ``dialect`` (default: the warehouse's), reading ``now`` from the
    warehouse's clock when it runs. Columns come from ``columns`` (a file), else from the
    warehouse (DuckDB, PostgreSQL)."""
    engine = parse_warehouse_url(settings.warehouse).engine
    chosen: DialectName = dialect or engine
    events = parse_table_ref(events_table or settings.batch_events_table)
    types = _columns_file(columns) if columns else _warehouse_columns(settings, events)
    if not types:
        raise DefinitionError(
            f"events table {events.schema}.{events.table}: no columns found (give --columns)"
        )
    table = EventsTable.of(events, types, chosen)
    return compile_group(group, table, dialect=chosen, now_ms=None).sql + ";"


def run_command(
    group: AttributeGroup, settings: Settings, events_table: str | None, *, full: bool = False
) -> int:
    """``batch run``: compute the group, with a progress line; prints the result as JSON."""
    import orjson
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from signals_stream.batch.run import run_batch
    from signals_stream.warehouse import WarehouseError

    events = parse_table_ref(events_table or settings.batch_events_table)
    err = Console(stderr=True)
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err
    ) as bar:
        task = bar.add_task(f"{group.full_name}: connecting", total=None)
        try:
            result = run_batch(
                group, settings.warehouse, events, settings.batch_schema,
                now_ms=int(time.time() * 1000), full=full,
                stage=lambda text: bar.update(task, description=f"{group.full_name}: {text}"),
            )  # fmt: skip
        except WarehouseError as exc:
            bar.stop()
            print(f"signals-stream batch run: {exc}", file=sys.stderr)
            return 1
        bar.update(task, description=f"{group.full_name}: {result.rows} entities written")
    print(orjson.dumps(result.to_json()).decode())
    return 0
