"""Coroutines that run from the moment the app starts, not after table recovery.

Faust starts ``app.task`` coroutines and user services only once the tables are recovered,
that is after the first group join (half the session timeout on the embedded broker). A
child service added before the app starts runs beside the join instead (the registry log's
tail, early serving); its futures are cancelled when it stops.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from mode import Service

__all__ = ["WithApp"]


class WithApp(Service):
    def __init__(self, *runs: Callable[[], Coroutine[Any, Any, None]]) -> None:
        super().__init__()
        self._runs = runs

    async def on_start(self) -> None:
        for run in self._runs:
            self.add_future(run())
