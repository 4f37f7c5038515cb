"""The definitions the engine runs with right now: one catalog, swapped atomically.

The definitions file (``--definitions`` / ``SIGNALS_DEFINITIONS``) installs a catalog at
start-up; the registry (issue #5) will install new ones while running. A swap takes effect for
the next event, without a restart. With no definitions, events are still re-keyed by the
built-in web keys so entity rows (event counts, first/last seen) exist from the first minute.
"""

from __future__ import annotations

from signals_stream.engine import Catalog
from signals_stream.events.parse import Projection
from signals_stream.routing.rekey import RoutingPlan, builtin_key

__all__ = ["DEFAULT_KEYS", "current_catalog", "current_plan", "install_catalog"]

DEFAULT_KEYS = ("domain_userid", "domain_sessionid")
_DEFAULT_PLAN = RoutingPlan(
    keys=tuple(builtin_key(k) for k in DEFAULT_KEYS), projection=Projection()
)

_catalog = Catalog()
_plan = _DEFAULT_PLAN


def current_catalog() -> Catalog:
    return _catalog


def current_plan() -> RoutingPlan:
    return _plan


def install_catalog(catalog: Catalog) -> None:
    """Make ``catalog`` the one the agents and views use from now on."""
    global _catalog, _plan
    _catalog = catalog
    _plan = catalog.routing_plan() if catalog.programs else _DEFAULT_PLAN
