"""Rules evaluated on entity rows by the engine's row step (``step_row``, what the entity
agent runs): edge-triggered, once per entity."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import yaml
from snowplow_signals.models.model import InterventionInstance

from signals_stream.devtools.generator import GeneratorConfig, generate_events
from signals_stream.engine import SourcedEvent, step_row
from signals_stream.engine.row import EntityRow, decode_row
from signals_stream.events.parse import parse_record
from signals_stream.registry.loader import load_definitions
from signals_stream.routing import entity_row_key, route_event
from tests.dbt_seeds import seed_event_id
from tests.unit.engine.workload import ecommerce_lines, seed_facts

EXAMPLE = Path(__file__).parents[3] / "signals_stream" / "examples" / "ecommerce.yaml"
NOW = 1_900_000_000_000


def _run(
    lines: list[bytes], definitions: Path = EXAMPLE, now_ms: int = NOW
) -> tuple[list[dict], dict[bytes, EntityRow]]:
    """Every event folded on its own, in order, at wall clock ``now_ms``: what each rule sends,
    and the rows."""
    catalog = load_definitions(definitions).catalog()
    plan = catalog.routing_plan()
    store: dict[bytes, bytes] = {}
    sent: list[dict] = []
    for offset, line in enumerate(lines):
        for item in route_event(parse_record(line), plan, partition=0, offset=offset):
            row_key = entity_row_key(item.key_name, item.entity_id)
            update = step_row(
                store.get(row_key),
                catalog,
                item.key_name,
                item.entity_id,
                [SourcedEvent(item.partition, item.offset, item.projection)],
                now_ms,
            )
            sent += update.instances
            store[row_key] = update.row
    return sent, {k: decode_row(v) for k, v in store.items()}


def _lines(count: int) -> list[bytes]:
    events = generate_events(GeneratorConfig(users=40, seed=5, start_ms=NOW - 3_600_000))
    return [next(events).line for _ in range(count)]


# The ecommerce dbt seed is the only sample data with repeated cart removals (the generator
# removes at most one product per cart page: its shoppers never reach 3 in half an hour). Its
# actions carry the atomic vendor ``ecommerce.tracking``, so the example's action selectors get a
# second selector with that vendor. The seed spans two months: it is read one minute after the
# last removal of the shopper who removed the most.
_ACTION = "snowplow_ecommerce_action"
_PERIOD_MS = 30 * 60_000  # cart_removals_last_30_min
_BUCKET_MS = 60_000  # a PT30M window's bucket: its edge is exact to one bucket


def _seed_definitions(directory: Path) -> Path:
    """The example definitions, their action selectors widened to the seed's vendor."""
    doc = yaml.safe_load(EXAMPLE.read_text())
    for group in doc["attribute_groups"]:
        for attribute in group["attributes"]:
            events = attribute["events"]
            events += [
                {**e, "vendor": "ecommerce.tracking"} for e in events if e["name"] == _ACTION
            ]
    path = directory / "ecommerce-seed.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _seed_removals() -> tuple[int, list[tuple[str, str, int, str]]]:
    """From the seed's CSV alone: the read time, and the removal rule's expected firings as
    ``(domain_userid, event_id, event_time_ms, cart_removals_last_30_min)``, in file order."""
    removals = [f for f in seed_facts() if f.action == "remove_from_cart" and f.domain_userid]
    busiest, _ = Counter(f.domain_userid for f in removals).most_common(1)[0]
    now = max(f.time_ms for f in removals if f.domain_userid == busiest) + _BUCKET_MS
    # Exactly the removals in [now - 30 min, now] count: none lies within a bucket of an edge.
    assert not [
        f
        for f in removals
        if now - _PERIOD_MS - _BUCKET_MS <= f.time_ms < now - _PERIOD_MS
        or now < f.time_ms <= now + _BUCKET_MS
    ]
    counts: Counter[str] = Counter()
    expected = []
    for fact in removals:  # file order: the order the run folds them in
        if now - _PERIOD_MS <= fact.time_ms <= now:
            counts[fact.domain_userid] += 1
            if counts[fact.domain_userid] == 3:  # the rule's `>= 3` starts to hold
                expected.append(
                    (fact.domain_userid, seed_event_id(fact.event_id), fact.time_ms, "3")
                )
    return now, expected


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


def test_payloads_are_valid_sdk_intervention_instances_with_string_attributes(
    tmp_path: Path,
) -> None:
    sent, _ = _run(_lines(3000))
    seed_now, expected_removals = _seed_removals()
    seed_lines = [line.encode() for line in ecommerce_lines()]
    seed_sent, _ = _run(seed_lines, _seed_definitions(tmp_path), now_ms=seed_now)
    sent += seed_sent
    for instance in sent:
        parsed = InterventionInstance.model_validate(instance)
        assert parsed.name in {"first_cart_add", "offer_help_after_cart_removals"}
        assert all(isinstance(v, str) for v in instance["attributes"].values())
        assert instance["target_attribute_key"]["name"] == "domain_userid"
    removals = [i for i in sent if i["name"] == "offer_help_after_cart_removals"]
    assert expected_removals, "the seed has a shopper with 3 cart removals in half an hour"
    assert [
        (
            i["target_attribute_key"]["id"],
            i["event_id"],
            i["event_time_ms"],
            i["attributes"]["cart_removals_last_30_min"],
        )
        for i in removals
    ] == expected_removals
    for instance in removals:
        assert int(instance["attributes"]["cart_removals_last_30_min"]) >= 3
        assert "page_views" in instance["attributes"]  # the payload group travels along


def test_a_replayed_run_sends_the_same_intervention_ids() -> None:
    lines = _lines(2000)
    first, _ = _run(lines)
    again, _ = _run(lines)
    assert [i["intervention_id"] for i in first] == [i["intervention_id"] for i in again]
