"""Which events an attribute listens to: ``events`` entries of vendor / name / version."""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints, model_validator

from signals_stream.definitions._base import DefinitionModel

__all__ = [
    "EVENT_SPECIFICATION_SCHEMA",
    "EventSelector",
    "page_ping",
    "page_view",
    "structured_event",
]

# The entity trackers attach to events of a tracking-plan event specification; its `id` is
# what `event_specification_id` selects on.
EVENT_SPECIFICATION_SCHEMA = ("com.snowplowanalytics.snowplow", "event_specification", 1)


class EventSelector(DefinitionModel):
    """One entry of ``Attribute.events``; every omitted field is a wildcard.

    ``EventSelector()`` matches every event, ``EventSelector(vendor="com.acme")`` every event of
    that vendor, and a selector without ``version`` every version. ``event_specification_id``
    selects the events carrying that tracking-plan specification instead, and excludes the
    other three fields.

    Args:
        vendor: ``event_vendor`` of the enriched event.
        name: ``event_name``.
        version: ``event_version``, ``M-m-p``.
        event_specification_id: id of an event specification.
    """

    name: (
        Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9-_]+$", min_length=1, max_length=128)]
        | None
    ) = None
    vendor: (
        Annotated[
            str, StringConstraints(pattern=r"^[a-zA-Z0-9-_.]+$", min_length=1, max_length=128)
        ]
        | None
    ) = None
    version: Annotated[str, StringConstraints(pattern=r"^[0-9]+-[0-9]+-[0-9]+$")] | None = None
    event_specification_id: Annotated[str, StringConstraints(min_length=1)] | None = None

    @model_validator(mode="after")
    def _spec_is_exclusive(self) -> EventSelector:
        if self.event_specification_id is not None and (
            self.name is not None or self.vendor is not None or self.version is not None
        ):
            raise ValueError(
                "event_specification_id: cannot be combined with name, vendor or version"
            )
        return self


_SNOWPLOW = "com.snowplowanalytics.snowplow"


def page_view() -> EventSelector:
    """Page views (``com.snowplowanalytics.snowplow/page_view/1-0-0``)."""
    return EventSelector(vendor=_SNOWPLOW, name="page_view", version="1-0-0")


def page_ping() -> EventSelector:
    """Page pings (``com.snowplowanalytics.snowplow/page_ping/1-0-0``)."""
    return EventSelector(vendor=_SNOWPLOW, name="page_ping", version="1-0-0")


def structured_event() -> EventSelector:
    """Structured events, which Enrich names ``com.google.analytics/event/1-0-0``."""
    return EventSelector(vendor="com.google.analytics", name="event", version="1-0-0")
