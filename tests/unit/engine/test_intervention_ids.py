"""An intervention's id names the event at which its rule's criteria first held, whatever the
batches the events were folded in (a replay after a crash splits them differently)."""

from __future__ import annotations

from signals_stream.devtools.generator import GeneratorConfig, generate_events
from signals_stream.engine import SourcedEvent, step_row
from signals_stream.events.parse import parse_record
from signals_stream.interventions import intervention_id
from signals_stream.registry.loader import load_definitions
from signals_stream.routing import entity_row_key, route_event
from tests.unit.engine.test_engine_interventions import EXAMPLE, NOW

CART_ADD = b'"type":"add_to_cart"'


def _lines(count: int) -> list[bytes]:
    events = generate_events(GeneratorConfig(users=40, seed=5, start_ms=NOW - 3_600_000))
    return [next(events).line for _ in range(count)]


def _run_in_batches(lines: list[bytes], size: int) -> tuple[list[dict], int]:
    """Fold ``lines`` with the entity agent's row step, ``size`` input records per batch (one
    update per entity per batch). Returns what was sent, and how many firings a batch
    attributed to an event other than its last."""
    catalog = load_definitions(EXAMPLE).catalog()
    plan = catalog.routing_plan()
    store: dict[bytes, bytes] = {}
    sent: list[dict] = []
    moved = 0
    for start in range(0, len(lines), size):
        batch: dict[bytes, tuple[str, bytes, list[SourcedEvent]]] = {}
        for offset in range(start, min(start + size, len(lines))):
            for item in route_event(parse_record(lines[offset]), plan, partition=0, offset=offset):
                row_key = entity_row_key(item.key_name, item.entity_id)
                entry = batch.setdefault(row_key, (item.key_name, item.entity_id, []))
                entry[2].append(SourcedEvent(item.partition, item.offset, item.projection))
        for row_key, (key_name, entity_id, sourced) in batch.items():
            update = step_row(store.get(row_key), catalog, key_name, entity_id, sourced, NOW)
            sent += update.instances
            if update.instances:
                last = parse_record(lines[max(o.offset for o in sourced)]).event_id
                moved += sum(1 for i in update.instances if i.get("event_id") != last)
            store[row_key] = update.row
    return sent, moved


def _firings(sent: list[dict]) -> list[tuple[str, str, str, str]]:
    return sorted(
        (i["name"], i["target_attribute_key"]["id"], i["intervention_id"], i["event_id"])
        for i in sent
    )


def test_every_batch_split_sends_the_ids_of_one_event_at_a_time() -> None:
    lines = _lines(3000)
    one_by_one, moved = _run_in_batches(lines, 1)
    assert one_by_one and moved == 0
    reference = _firings(one_by_one)
    for size in (2, 7, 64, 500, 3000):
        sent, moved = _run_in_batches(lines, size)
        assert _firings(sent) == reference, f"batches of {size}"
        if size >= 64:
            assert moved, "some firings were triggered before their batch's last event"


def test_the_first_event_meeting_the_criteria_names_the_firing() -> None:
    lines = _lines(3000)
    user = _user(next(line for line in lines if CART_ADD in line))
    own = [line for line in lines if _user(line) == user]
    first_add = next(i for i, line in enumerate(own) if CART_ADD in line)
    assert first_add + 1 < len(own), "the user does something after the first cart add"
    sent, moved = _run_in_batches(own, len(own))  # one batch, one update of the user row
    [instance] = [i for i in sent if i["name"] == "first_cart_add"]
    trigger = parse_record(own[first_add]).event_id
    assert instance["event_id"] == trigger
    assert instance["intervention_id"] == intervention_id(trigger, "first_cart_add", 1)
    assert moved


def _user(line: bytes) -> str:
    return str(parse_record(line).atomic("domain_userid"))
