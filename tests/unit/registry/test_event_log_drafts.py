"""Event logs' three registry states (signals.md: published, published with a pending draft,
draft only): a write to a published log is a draft, and the engine keeps running the published
version until ``engines/publish``."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from signals_stream.registry import Conflict, PublishSelection, Registry, delete, set_published
from signals_stream.registry.render import render
from tests.unit.engine.test_event_buffer import SESSION_LOG
from tests.unit.registry.test_commands import apply, run_create


def _states(registry: Registry) -> tuple[bool, bool, int]:
    """(is_published, has_published_version) as answered, and the live log's max_events."""
    entry = registry.get("event_logs", SESSION_LOG["name"])
    body = render(entry, registry)
    live = registry.catalog().event_logs.get(SESSION_LOG["name"])
    return body["is_published"], body["has_published_version"], live.max_events if live else 0


def _write(registry: Registry, body: dict[str, Any], now: int) -> None:
    from signals_stream.registry import update

    _, changes = update(registry, "event_logs", body["name"], None, body, now)
    apply(registry, changes)


def _switch(registry: Registry, published: bool, now: int) -> None:
    selection = PublishSelection.parse({"event_logs": [{"name": SESSION_LOG["name"]}]})
    apply(registry, set_published(registry, selection, published, now))


def test_a_changed_published_log_waits_as_a_draft_until_published() -> None:
    registry = Registry()
    draft = {**copy.deepcopy(SESSION_LOG), "is_published": False, "max_events": 10}
    run_create(registry, "event_logs", draft)
    assert _states(registry) == (False, False, 0)  # draft only
    _switch(registry, True, 2_000)
    assert _states(registry) == (True, True, 10)  # published
    _write(registry, {**draft, "max_events": 25}, 3_000)
    assert _states(registry) == (False, True, 10)  # published, pending draft: 10 still runs
    assert render(registry.get("event_logs", draft["name"]), registry)["max_events"] == 25
    with pytest.raises(Conflict):
        apply(registry, delete(registry, "event_logs", draft["name"], None, 3_500))
    _switch(registry, True, 4_000)
    assert _states(registry) == (True, True, 25)  # the draft is live now
    _write(registry, {**draft, "max_events": 25}, 5_000)  # the same as published
    assert _states(registry) == (True, True, 25)


def test_unpublishing_a_log_with_a_pending_draft_takes_it_down() -> None:
    registry = Registry()
    run_create(registry, "event_logs", {**copy.deepcopy(SESSION_LOG), "is_published": False})
    _switch(registry, True, 2_000)
    _write(registry, {**SESSION_LOG, "is_published": False, "max_age_seconds": 60}, 3_000)
    _switch(registry, False, 4_000)
    assert _states(registry) == (False, False, 0)
    apply(registry, delete(registry, "event_logs", SESSION_LOG["name"], None, 5_000))
    assert registry.find("event_logs", SESSION_LOG["name"]) is None


def test_a_pending_draft_survives_the_log_record_round_trip() -> None:
    registry = Registry()
    run_create(registry, "event_logs", {**copy.deepcopy(SESSION_LOG), "is_published": False})
    _switch(registry, True, 2_000)
    _write(registry, {**SESSION_LOG, "is_published": False, "max_events": 7}, 3_000)
    entry = registry.get("event_logs", SESSION_LOG["name"])
    again = type(entry).decode(entry.key, entry.encode())
    assert again.published_model == entry.published_model and not again.is_published
