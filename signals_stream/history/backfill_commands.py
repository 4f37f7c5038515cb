"""``signals-stream backfill status | start | cancel``: backfills seen and steered from outside.

``status`` reads the backfill topic (what every task last checkpointed) and draws a progress
bar per task; ``start`` gives a published group a (new) ``backfill_since_tstamp`` through a
worker's registry API, which makes it a new publication filled from then
(``registry.commands``); ``cancel`` writes a cancel record the workers' tasks stop at (what they
merged stays).
"""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from signals_stream.errors import DefinitionError, LogUnavailable
from signals_stream.history.backfill_state import BackfillTask, read_backfill_state, write_cancel
from signals_stream.history.log_start import EARLIEST_FIELD
from signals_stream.history.warehouse_backfill_state import read_warehouse_parts
from signals_stream.kafka.auth import client_auth
from signals_stream.settings import Settings

__all__ = ["cancel_backfill", "show_status", "start_backfill"]


def _iso(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _line(task: BackfillTask, cancelled: set[str]) -> dict[str, Any]:
    state = "cancelled" if task.backfill in cancelled and task.state == "running" else task.state
    eta = task.eta_s()
    notes = [] if task.until_ms is None else [f"until {_iso(task.until_ms)}"]
    if task.earliest_ms is not None:
        notes.append(f"log starts {_iso(task.earliest_ms)}")
    note = ", ".join(notes)
    return {
        "description": f"{task.backfill} p{task.partition}",
        "state": state,
        "remaining": task.remaining,
        "eta": "-" if eta is None else f"{eta:.0f}s",
        "note": note,
    }


def _draw(progress: Progress, rows: dict[str, TaskID], tasks: Iterable[BackfillTask],
          cancelled: set[str]) -> None:  # fmt: skip
    for task in tasks:
        fields = _line(task, cancelled)
        if task.key not in rows:
            rows[task.key] = progress.add_task(
                fields.pop("description"), total=max(task.total, 1), **fields
            )
        else:
            fields.pop("description")
        progress.update(
            rows[task.key], completed=task.next - task.first if task.total else 1, **fields
        )


def show_status(settings: Settings, *, watch: bool = False, console: Console | None = None) -> int:
    """Print every backfill task's progress; with ``watch``, redraw until none is running."""
    console = console or Console()
    tasks, cancelled = asyncio.run(read_backfill_state(settings))
    if not tasks:
        console.print("no backfills")
        return 0
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[state]}"), TextColumn("left {task.fields[remaining]}"),
        TextColumn("eta {task.fields[eta]}"), TextColumn("{task.fields[note]}"),
        console=console, auto_refresh=False,
    )  # fmt: skip
    rows: dict[str, TaskID] = {}
    with progress:
        while True:
            _draw(progress, rows, (tasks[k] for k in sorted(tasks)), cancelled)
            progress.refresh()
            running = [t for t in tasks.values() if t.state == "running"]
            if not watch or all(t.backfill in cancelled for t in running):
                break
            time.sleep(1.0)
            tasks, cancelled = asyncio.run(read_backfill_state(settings))
    for part in asyncio.run(read_warehouse_parts(settings)).values():  # the warehouse parts
        console.print(part.describe())
    return 0


def cancel_backfill(settings: Settings, backfill: str) -> int:
    """Write the cancel record of ``backfill`` (a known id)."""

    async def cancel() -> None:
        tasks, _ = await read_backfill_state(settings)
        if not any(t.backfill == backfill for t in tasks.values()):
            known = ", ".join(sorted({t.backfill for t in tasks.values()})) or "none"
            raise DefinitionError(f"no backfill {backfill!r} (known: {known})")
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.bootstrap_servers, **client_auth(settings)
        )
        await producer.start()
        try:
            await write_cancel(producer, settings, backfill)
        finally:
            await producer.stop()

    asyncio.run(cancel())
    print(f"backfill {backfill}: cancelled (what it merged stays)")
    return 0


def _call(settings: Settings, base: str, method: str, path: str, body: Any = None) -> Any:
    token = settings.api_token.get_secret_value() if settings.api_token else ""
    request = urllib.request.Request(
        base.rstrip("/") + path,
        data=None if body is None else orjson.dumps(body),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method=method,
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return orjson.loads(answer.read())
    except urllib.error.HTTPError as exc:
        raise DefinitionError(f"{base} answered {exc.code}: {exc.read().decode()[:500]}") from exc
    except OSError as exc:
        raise LogUnavailable(f"no worker answers at {base}: {exc}") from exc


def start_backfill(
    settings: Settings,
    group: str,
    since: str,
    version: int | None,
    url: str | None,
    *,
    until: str | None = None,
) -> int:
    """Give published ``group`` (its latest version by default) the backfill start ``since``
    (and end ``until``, a range backfill; without it, any earlier end is dropped)."""
    base = url or settings.worker_url or settings.web_url
    name = urllib.parse.quote(group, safe="")
    if version is None:  # the latest version
        latest = _call(settings, base, "GET", f"/api/v1/registry/attribute_groups/{name}")
        version = int(latest["version"])
    path = f"/api/v1/registry/attribute_groups/{name}/versions/{version}"
    body = _call(settings, base, "GET", path)
    if not body.get("is_published"):
        raise DefinitionError(f"attribute group {group!r} version {version} is not published")
    body["backfill_since_tstamp"] = since
    body["backfill_until_tstamp"] = until
    answer = _call(settings, base, "PUT", path, body)
    span = f"from {since}" if until is None else f"over [{since}, {until})"
    print(f"backfill of {group} v{version} {span} started: `signals-stream backfill status`")
    earliest = answer.get(EARLIEST_FIELD) if isinstance(answer, dict) else None
    if earliest:
        at = int(datetime.fromisoformat(earliest).timestamp() * 1000)
        print(f"the input log starts at {_iso(at)}: the backfill takes what is there")
    return 0
