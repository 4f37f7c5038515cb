"""The definitions the engine runs with right now: one catalog, swapped atomically.

A worker holds one :class:`LiveCatalog`. The definitions file installs a catalog at start-up
and the registry log installs new ones while running; a swap takes effect for the next batch,
without a restart. With no definitions, events are still re-keyed by the built-in web keys so
entity rows (event counts, first/last seen) exist from the first minute.
"""

from __future__ import annotations

from signals_stream.engine.catalog import Catalog
from signals_stream.events.event import Projection
from signals_stream.routing import RoutingPlan, builtin_key

__all__ = ["DEFAULT_KEYS", "LiveCatalog"]

DEFAULT_KEYS = ("domain_userid", "domain_sessionid")
_DEFAULT_PLAN = RoutingPlan(
    keys=tuple(builtin_key(k) for k in DEFAULT_KEYS), projection=Projection()
)


class LiveCatalog:
    """The installed catalog and the routing plan compiled from it."""

    __slots__ = ("catalog", "plan")

    def __init__(self, catalog: Catalog | None = None) -> None:
        self.catalog = Catalog()
        self.plan = _DEFAULT_PLAN
        if catalog is not None:
            self.install(catalog)

    def install(self, catalog: Catalog) -> None:
        """Make ``catalog`` the one the agents and views use from now on."""
        plan = catalog.routing_plan() if catalog.computes else _DEFAULT_PLAN
        self.catalog, self.plan = catalog, plan
