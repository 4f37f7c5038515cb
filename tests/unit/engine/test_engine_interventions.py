"""Rules evaluated on entity rows as the state writer does: edge-triggered, once per entity."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from snowplow_signals.models.model import InterventionInstance

from signals_stream.devtools.generator import GeneratorConfig, generate_events
from signals_stream.engine import apply_record, fire_interventions, watched_values
from signals_stream.engine.row import EntityRow, decode_row, encode_row
from signals_stream.events.parse import parse_record
from signals_stream.registry.loader import load_definitions
from signals_stream.routing.rekey import entity_row_key, route_event

EXAMPLE = Path(__file__).parents[3] / "signals_stream" / "examples" / "ecommerce.yaml"
NOW = 1_900_000_000_000


def _run(
    lines: list[bytes], definitions: Path = EXAMPLE
) -> tuple[list[dict], dict[bytes, EntityRow]]:
    """Every event folded on its own, in order: what each rule sends, and the rows."""
    catalog = load_definitions(definitions).catalog()
    plan = catalog.routing_plan()
    store: dict[bytes, bytes] = {}
    sent: list[dict] = []
    for offset, line in enumerate(lines):
        for key_name, entity_id, partition, off, projection in route_event(
            parse_record(line), plan, partition=0, offset=offset
        ):
            row_key = entity_row_key(key_name, entity_id)
            raw = store.get(row_key)
            row = decode_row(raw)
            previous = watched_values(row, catalog, key_name, NOW)
            done = apply_record(row, catalog, key_name, [(partition, off, projection)], now_ms=NOW)
            if done.events and catalog.rules.watched(key_name):
                sent += fire_interventions(
                    row,
                    catalog,
                    key_name,
                    entity_id.decode(),
                    previous,
                    done.events,
                    NOW,
                    before=lambda raw=raw: decode_row(raw),
                )
            store[row_key] = encode_row(row)
    return sent, {k: decode_row(v) for k, v in store.items()}


def _lines(count: int) -> list[bytes]:
    events = generate_events(GeneratorConfig(users=40, seed=5, start_ms=NOW - 3_600_000))
    return [next(events).line for _ in range(count)]


def test_first_cart_add_fires_once_for_every_shopper_who_added_to_cart() -> None:
    lines = _lines(3000)
    sent, rows = _run(lines)
    fired = Counter(
        instance["target_attribute_key"]["id"]
        for instance in sent
        if instance["name"] == "first_cart_add"
    )
    shoppers = {
        key[len(b"domain_userid\x1f") :].decode()
        for key, row in rows.items()
        if key.startswith(b"domain_userid\x1f") and "first_cart_add:1" in row.fired
    }
    assert fired, "the workload has cart adds"
    assert set(fired) == shoppers
    assert set(fired.values()) == {1}  # edge-triggered: never twice for one shopper


def test_payloads_are_valid_sdk_intervention_instances_with_string_attributes() -> None:
    sent, _ = _run(_lines(3000))
    for instance in sent:
        parsed = InterventionInstance.model_validate(instance)
        assert parsed.name in {"first_cart_add", "offer_help_after_cart_removals"}
        assert all(isinstance(v, str) for v in instance["attributes"].values())
        assert instance["target_attribute_key"]["name"] == "domain_userid"
    removals = [i for i in sent if i["name"] == "offer_help_after_cart_removals"]
    for instance in removals:
        assert int(instance["attributes"]["cart_removals_last_30_min"]) >= 3
        assert "page_views" in instance["attributes"]  # the payload group travels along


def test_a_replayed_run_sends_the_same_intervention_ids() -> None:
    lines = _lines(2000)
    first, _ = _run(lines)
    again, _ = _run(lines)
    assert [i["intervention_id"] for i in first] == [i["intervention_id"] for i in again]
