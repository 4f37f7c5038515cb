"""``test()``: an unpublished group computed over the recent window of the input log.

The group is compiled alone into a catalog of its own (nothing is installed or published),
the window ``[now - window, now]`` of the input topic is read (:mod:`.reading`), each id's
events are folded on event time (``engine.history.fold_on_event_time``) and the group is read
at now, as ``get-online-attributes`` would read it. The answer is columnar, the key first,
which is what the SDK turns into its DataFrame.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from signals_stream.definitions import AttributeKey
from signals_stream.definitions.durations import duration_ms
from signals_stream.engine.catalog import Catalog
from signals_stream.engine.fold import FUTURE_TOLERANCE_MS
from signals_stream.engine.history import EntityHistory, fold_on_event_time
from signals_stream.engine.read import read_group
from signals_stream.errors import DefinitionError
from signals_stream.history.reading import HistoryRead, Progress, bounded, read_history
from signals_stream.history.requests import GroupTestRequest
from signals_stream.settings import Settings

__all__ = ["SAMPLE_IDS", "run_group_test"]

SAMPLE_IDS = 10  # ids answered when the request names none (Signals: "10 random ids")


async def run_group_test(
    request: GroupTestRequest,
    settings: Settings,
    keys: Iterable[AttributeKey],
    *,
    now_ms: int,
    progress: Progress | None = None,
) -> dict[str, list[Any]]:
    """The group's values as of ``now_ms`` for the requested ids (or the 10 most recently
    active ids of the window), from the events of the window.

    Args:
        keys: the registered attribute keys (a group may name its key by name only).

    Raises:
        DefinitionError: the group cannot be computed from the stream (422).
        HistoryTooLarge, HistoryDeadline, LogUnavailable: see :mod:`.reading`.
    """
    group = request.attribute_group
    if group.kind != "stream":
        raise DefinitionError(
            f"attribute_group: {group.full_name} is a batch group (offline); only stream "
            "groups can be computed from the event log"
        )
    catalog = Catalog.build([group.model_copy(update={"is_published": True})], keys)
    published = catalog.group(group.name, group.version)
    key_name = published.key_name
    wanted = list(dict.fromkeys(request.attribute_key_ids or ()))
    history = EntityHistory(
        key=catalog.programs[key_name].key,
        projection=catalog.routing_plan().projection,
        start_ms=now_ms - duration_ms(request.window),
        end_ms=now_ms + FUTURE_TOLERANCE_MS,
        ids=frozenset(wanted) if wanted else None,
        app_ids=frozenset(request.app_ids or ()),
    )
    what = f"testing {group.full_name} over the last {request.window}"
    read = HistoryRead()
    async with bounded(settings, what, read):
        await read_history(settings, history, what=what, read=read, progress=progress)
        ids = wanted or history.most_recent(SAMPLE_IDS)
        columns: dict[str, list[Any]] = {key_name: ids}
        for name in published.attribute_names:
            columns.setdefault(name, [])
        for entity_id in ids:
            row = fold_on_event_time(catalog, key_name, entity_id, history.events(entity_id)).row
            for name, value in read_group(row, published, now_ms).items():
                columns[name].append(value)
            await asyncio.sleep(0)  # the deadline can fire between entities
    return columns
