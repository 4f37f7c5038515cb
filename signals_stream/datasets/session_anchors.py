"""Session anchors over plain events, for the log build (``--from log``). Pure.

The same rules as the SQL of ``datasets/anchors.py`` (``docs/semantics.md``, "Training
datasets"), applied to one session's events at a time, so a build keeps one session in memory:

* :func:`session_anchors`: a session's events (those in the span; the caller filters) ->
  its label and its anchors: events that are not excluded, strictly before the first goal
  event (the goal search ignores the exclusions), with at least ``min_events`` non-excluded
  events before them (order: event time, then event id); at most ``max_anchors_per_session``,
  the smallest ``(md5('<seed>:<event_id>'), event_id)``.
* :class:`NegativeSampler` then keeps every positive and the first
  ``floor(max_negative_ratio * positives)`` negatives in ``(md5('<seed>:<session>'), time,
  event id)`` order; the caller keeps the negatives sorted (on disk) and asks
  :meth:`NegativeSampler.keep` how many to take once every session was seen.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import NamedTuple

from signals_stream.datasets.anchors import sample_hash_text
from signals_stream.datasets.models import SessionAnchors

__all__ = ["NegativeSampler", "SessionEvent", "sample_hash", "session_anchors"]


class SessionEvent(NamedTuple):
    """One event of a session, as session anchors need it."""

    t: int  # event time (derived, else collector), ms
    event_id: str
    goal: bool  # matches goal_criteria
    excluded: bool  # its event_name is in excluded_events


def sample_hash(seed: int, value: str) -> str:
    """The lowercase hex MD5 of ``'<seed>:<value>'``, as the SQL's ``md5`` orders it."""
    return hashlib.md5(sample_hash_text(seed, value).encode()).hexdigest()


def session_anchors(
    events: Sequence[SessionEvent], spec: SessionAnchors, seed: int
) -> tuple[int, list[SessionEvent]]:
    """``(label, anchors)`` of one session (its events in the span, in any order); the anchors
    in (time, event id) order."""
    ordered = sorted(events, key=lambda e: (e.t, e.event_id))
    goals = [e.t for e in ordered if e.goal]
    first_goal = goals[0] if goals else None
    label = 0 if first_goal is None else 1
    minimum = spec.min_events or 0
    anchors: list[SessionEvent] = []
    prior = 0  # non-excluded events before this one (after the goal too: they never anchor)
    for event in ordered:
        if event.excluded:
            continue
        if prior >= minimum and (first_goal is None or event.t < first_goal):
            anchors.append(event)
        prior += 1
    cap = spec.max_anchors_per_session
    if cap is not None and len(anchors) > cap:
        kept = sorted(anchors, key=lambda e: (sample_hash(seed, e.event_id), e.event_id))[:cap]
        anchors = sorted(kept, key=lambda e: (e.t, e.event_id))
    return label, anchors


class NegativeSampler:
    """``max_negative_ratio``: counts the positives; how many negatives to keep."""

    def __init__(self, ratio: float | None) -> None:
        self.ratio = ratio
        self.positives = 0

    def keep(self) -> int | None:
        """How many negatives to take (none: every one)."""
        if self.ratio is None:
            return None
        return math.floor(float(self.ratio) * self.positives)

    @staticmethod
    def order(seed: int, session: str, event: SessionEvent) -> tuple[str, int, str]:
        """A negative's place in the sampling order."""
        return sample_hash(seed, session), event.t, event.event_id
