"""Read a window of the input topic into an entity history, within the history bounds.

The Kafka edge (``kafka/log_window.py``) hands out raw records; they are parsed with the
stream's parser (a record it refuses is counted and skipped, as a dead letter would be) and
offered to an :class:`~signals_stream.engine.history.EntityHistory`. Two bounds keep a request
from running away: at most ``SIGNALS_HISTORY_MAX_RECORDS`` records stamped inside the window,
and ``SIGNALS_HISTORY_DEADLINE_S`` for the read and the fold together (:func:`bounded`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, field

from signals_stream.engine.history import EntityHistory
from signals_stream.errors import BadEvent, HistoryDeadline, HistoryTooLarge
from signals_stream.events.parse import parse_record
from signals_stream.kafka.auth import client_auth
from signals_stream.kafka.log_window import LogWindow, read_log_window
from signals_stream.settings import Settings

__all__ = ["HistoryRead", "Progress", "bounded", "read_history"]

Progress = Callable[[LogWindow], None]


@dataclass
class HistoryRead:
    """How a read went: the window's ranges and counters, and the records the parser refused."""

    window: LogWindow | None = None
    bad: int = field(default=0)

    def describe(self) -> str:
        if self.window is None:
            return "before the offsets were found"
        w = self.window
        return f"{w.read:,} of {w.total:,} records of {w.topic!r} read"


async def read_history(
    settings: Settings,
    history: EntityHistory,
    *,
    what: str,
    read: HistoryRead | None = None,
    progress: Progress | None = None,
) -> HistoryRead:
    """Offer every event of the input topic stamped at or after ``history.start_ms`` to
    ``history``.

    Args:
        what: the request, for the bound's message (``window PT1H``).
        read: the counters to fill (so a caller that times out can still say how far it got).

    Raises:
        HistoryTooLarge: more than ``SIGNALS_HISTORY_MAX_RECORDS`` records in the window.
        LogUnavailable: the topic cannot be read.
    """
    read = read or HistoryRead()
    limit = settings.history_max_records

    def started(window: LogWindow) -> None:
        read.window = window

    batches = read_log_window(
        settings.bootstrap_servers,
        settings.input_topic,
        history.start_ms,
        auth=client_auth(settings),
        on_start=started,
    )
    async with aclosing(batches):  # the consumer closes when a bound stops the read
        async for batch in batches:
            window = read.window
            assert window is not None  # set before the first batch
            if window.in_window > limit:
                raise HistoryTooLarge(
                    f"{what}: the input topic holds more than SIGNALS_HISTORY_MAX_RECORDS="
                    f"{limit:,} records in the window ({read.describe()}); ask for a shorter "
                    "window or raise the bound"
                )
            for record in batch:
                try:
                    event = parse_record(record.value)
                except BadEvent:
                    read.bad += 1
                    continue
                history.add(event)
            if progress is not None:
                progress(window)
    return read


@asynccontextmanager
async def bounded(settings: Settings, what: str, read: HistoryRead) -> AsyncIterator[None]:
    """Run the body within ``SIGNALS_HISTORY_DEADLINE_S``.

    Raises:
        HistoryDeadline: it took longer; the message says how far the read got.
    """
    limit = settings.history_deadline_s
    try:
        async with asyncio.timeout(limit):
            yield
    except TimeoutError:
        raise HistoryDeadline(
            f"{what}: not done within SIGNALS_HISTORY_DEADLINE_S={limit:g} s "
            f"({read.describe()}); ask for a shorter window or raise the bound"
        ) from None
