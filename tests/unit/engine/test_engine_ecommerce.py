"""The engine on the ecommerce seed: every attribute of every entity against the CSV.

The 834 seed rows go through the agents' path (``workload.replay``) once, at the processing
wall clock ``T0``, and are read at ``READ_MS`` (one minute later). Each expectation is computed
from ``workload.seed_facts`` (the CSV read with ``csv``/``json``) with plain Python, following
the Signals semantics of ``shared/reference/signals.md`` §1.4: ``first``/``last`` and
``unique_list`` order by ``derived_tstamp`` (ties by ``event_id``, then value), ``null``
values are skipped, criteria comparisons with null are false, ``most/least_frequent`` ties are
arbitrary (so any value with the extreme count is accepted), HLL is approximate.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.unit.engine.groups import ECOM, ECOM_USER, SESSION, SHOPPER
from tests.unit.engine.workload import (
    READ_MS,
    Replay,
    SeedFact,
    baseline,
    seed_facts,
)

Facts = list[SeedFact]
Getter = Callable[[SeedFact], Any]

_DAY_MS = 86_400_000


@pytest.fixture(scope="module")
def run() -> Replay:
    return baseline()


def _grouped(key: Callable[[SeedFact], str | None]) -> dict[str, Facts]:
    out: dict[str, Facts] = {}
    for fact in seed_facts():
        entity = key(fact)
        if entity:
            out.setdefault(entity, []).append(fact)
    return out


USERS = _grouped(lambda f: f.domain_userid)
SESSIONS = _grouped(lambda f: f.domain_sessionid)
ECOM_USERS = _grouped(lambda f: f.ecom_user)


# --- plain-Python aggregations over the CSV facts -------------------------------------------


def _first_item(items: tuple[dict[str, Any], ...], field: str, index: int = 0) -> Any:
    return items[index].get(field) if len(items) > index else None


def price(f: SeedFact, index: int = 0) -> float | None:
    return _first_item(f.products, "price", index)


def category(f: SeedFact, index: int = 0) -> str | None:
    return _first_item(f.products, "category", index)


def product_id(f: SeedFact) -> str | None:
    return _first_item(f.products, "id")


def step(f: SeedFact) -> float | None:
    return _first_item(f.steps, "step")


def concat(separator: str, *parts: str | None) -> str | None:
    """``concat`` of string inputs: nulls skipped, null when every input is."""
    kept = [p for p in parts if p is not None]
    return separator.join(kept) if kept else None


def values(facts: Iterable[SeedFact], get: Getter) -> list[Any]:
    return [v for v in map(get, facts) if v is not None]


def count(facts: Iterable[SeedFact], pred: Callable[[SeedFact], bool]) -> int:
    return sum(1 for f in facts if pred(f))


def pick(facts: Iterable[SeedFact], get: Getter, *, latest: bool) -> Any:
    """``first``/``last``: the value of the earliest/latest event by (time, event id)."""
    ranked = [(f.time_ms, f.event_id, v) for f in facts if (v := get(f)) is not None]
    if not ranked:
        return None
    return (max if latest else min)(ranked, key=lambda r: (r[0], r[1]))[2]


def by_recency(facts: Iterable[SeedFact], get: Getter) -> list[Any]:
    """``unique_list``: distinct values, oldest to newest by their latest sighting."""
    seen: dict[Any, int] = {}
    for f in facts:
        v = get(f)
        if v is not None:
            seen[v] = max(seen.get(v, f.time_ms), f.time_ms)
    return [v for v, _ in sorted(seen.items(), key=lambda kv: (kv[1], kv[0]))]


def extremes(facts: Iterable[SeedFact], get: Getter, *, most: bool) -> set[Any]:
    """The values ``most/least_frequent`` may return (ties are arbitrary in Signals)."""
    counts = Counter(values(facts, get))
    if not counts:
        return {None}
    target = (max if most else min)(counts.values())
    return {v for v, n in counts.items() if n == target}


def action_is(*types: str) -> Callable[[SeedFact], bool]:
    return lambda f: f.action in types


def when(pred: Callable[[SeedFact], bool], get: Getter) -> Getter:
    return lambda f: get(f) if pred(f) else None


def hour(f: SeedFact) -> int:
    return datetime.fromtimestamp(f.time_ms / 1000, UTC).hour


def day(f: SeedFact) -> str:
    return datetime.fromtimestamp(f.time_ms / 1000, UTC).date().isoformat()


def _iso(text: str | None, part: str | None = None) -> Any:
    if text is None:
        return None
    parsed = datetime.fromisoformat(text).astimezone(UTC)
    return parsed if part is None else getattr(parsed, part)


def _both(a: Any, b: Any) -> list[Any] | None:
    return None if a is None or b is None else [a, b]


def _like_product(f: SeedFact) -> bool:
    # SQL LIKE '%/product_': anchored, `_` is one character.
    return f.page_url is not None and re.fullmatch(r".*/product.", f.page_url, re.S) is not None


# attribute -> (expected value from the entity's facts, how to compare)
SHOPPER_EXPECTED: dict[str, tuple[Callable[[Facts], Any], str]] = {
    "add_to_cart_count": (lambda fs: count(fs, action_is("add_to_cart")), "exact"),
    "tracking_v100_events": (
        lambda fs: count(
            fs, lambda f: f.identity == ("ecommerce.tracking", "snowplow_ecommerce_action", "1-0-0")
        ),
        "exact",
    ),
    "cart_changes": (lambda fs: count(fs, action_is("add_to_cart", "remove_from_cart")), "exact"),
    "revenue": (
        lambda fs: sum(
            values(
                fs, when(action_is("transaction"), lambda f: _first_item(f.transactions, "revenue"))
            )
        ),
        "approx",
    ),
    "big_orders": (
        lambda fs: count(
            fs,
            lambda f: (
                f.action == "transaction" and (_first_item(f.transactions, "revenue") or 0) > 20
            ),
        ),
        "exact",
    ),
    "min_viewed_price": (
        lambda fs: min(
            values(fs, when(action_is("product_view", "list_view"), price)), default=None
        ),
        "approx",
    ),
    "max_cheap_price": (
        lambda fs: max((p for p in values(fs, price) if p < 15), default=None),
        "approx",
    ),
    "mean_cart_price": (
        lambda fs: (lambda ps: sum(ps) / len(ps) if ps else None)(
            values(fs, when(action_is("add_to_cart"), price))
        ),
        "approx",
    ),
    "first_page": (
        lambda fs: pick(fs, when(_like_product, lambda f: f.page_urlpath), latest=False),
        "exact",
    ),
    "last_page": (lambda fs: pick(fs, lambda f: f.page_urlpath, latest=True) or "(none)", "exact"),
    "pages_seen": (lambda fs: by_recency(fs, lambda f: f.page_urlpath), "exact"),
    "fav_category": (lambda fs: extremes(fs, category, most=True), "one_of"),
    "rare_category": (lambda fs: extremes(fs, category, most=False), "one_of"),
    "action_counts": (lambda fs: dict(Counter(values(fs, lambda f: f.action))), "counts"),
    "distinct_products": (
        lambda fs: len(set(values(fs, product_id))),
        "hll",
    ),
    "minutes_since_last": (
        lambda fs: (READ_MS - max(f.time_ms for f in fs)) / 60_000,
        "approx",
    ),
    "days_since_first": (lambda fs: (READ_MS - min(f.time_ms for f in fs)) / _DAY_MS, "approx"),
    "last_second_category": (lambda fs: pick(fs, lambda f: category(f, 1), latest=True), "exact"),
    "product_keys": (
        lambda fs: by_recency(fs, lambda f: concat(":", category(f), product_id(f))),
        "exact",
    ),
    "max_pair_price": (
        lambda fs: max(
            (sum(pair) for pair in values(fs, lambda f: _both(price(f), price(f, 1)))),
            default=None,
        ),
        "approx",
    ),
    "name_or_page_type": (
        lambda fs: dict(
            Counter(
                values(
                    fs,
                    lambda f: (
                        f.action_name if f.action_name is not None else _first_item(f.pages, "type")
                    ),
                )
            )
        ),
        "counts",
    ),
    "max_price_or_cart": (
        lambda fs: max(
            (
                max(pair)
                for pair in values(
                    fs, lambda f: _both(price(f), _first_item(f.carts, "total_value"))
                )
            ),
            default=None,
        ),
        "approx",
    ),
    "peak_hour": (lambda fs: extremes(fs, hour, most=True), "one_of"),
    "active_days": (lambda fs: by_recency(fs, day), "exact"),
    "late_checkout_steps": (
        lambda fs: count(fs, lambda f: step(f) is not None and step(f) >= 2),
        "exact",
    ),
    "first_checkout_steps": (
        lambda fs: count(fs, lambda f: step(f) is not None and step(f) <= 1),
        "exact",
    ),
    "non_hat_views": (
        lambda fs: count(
            fs, lambda f: f.action == "product_view" and category(f) not in (None, "Hats")
        ),
        "exact",
    ),
    "unnamed_actions": (
        lambda fs: count(fs, lambda f: f.action is not None and f.action_name is None),
        "exact",
    ),
    "events_30d": (
        lambda fs: count(fs, lambda f: READ_MS - 30 * _DAY_MS <= f.time_ms <= READ_MS),
        "exact",
    ),
    "list_views": (lambda fs: count(fs, action_is("list_view")), "exact"),
}

SESSION_EXPECTED: dict[str, tuple[Callable[[Facts], Any], str]] = {
    "events": (len, "exact"),
    # Every session ended more than 10 minutes before the read: the rolling ones are empty.
    "events_10m": (lambda fs: 0, "exact"),
    "products_10m": (lambda fs: [], "exact"),
    "last_action": (lambda fs: pick(fs, lambda f: f.action, latest=True) or "idle", "exact"),
    "max_cart_value": (
        lambda fs: max(values(fs, lambda f: _first_item(f.carts, "total_value")), default=None),
        "approx",
    ),
    "seconds_since_last": (lambda fs: (READ_MS - max(f.time_ms for f in fs)) / 1000, "approx"),
}

ECOM_USER_EXPECTED: dict[str, tuple[Callable[[Facts], Any], str]] = {
    "events": (len, "exact"),
    "mobile_v101_events": (
        lambda fs: count(fs, lambda f: f.identity == (ECOM, "snowplow_ecommerce_action", "1-0-1")),
        "exact",
    ),
    "sessions": (lambda fs: by_recency(fs, lambda f: f.domain_sessionid or None), "exact"),
    "cart_value_added": (
        lambda fs: sum(
            values(
                fs, when(action_is("add_to_cart"), lambda f: _first_item(f.carts, "total_value"))
            )
        ),
        "approx",
    ),
    "distinct_browsers": (lambda fs: len({f.domain_userid for f in fs if f.domain_userid}), "hll"),
    "session_start_hour": (
        lambda fs: pick(
            fs,
            lambda f: _iso(_first_item(f.sessions, "firstEventTimestamp"), "hour"),
            latest=False,
        ),
        "exact",
    ),
    "earliest_session_start": (
        lambda fs: min(
            values(fs, lambda f: _iso(_first_item(f.sessions, "firstEventTimestamp"))),
            default=None,
        ),
        "time",
    ),
    "last_seen": (
        lambda fs: datetime.fromtimestamp(max(f.time_ms for f in fs) / 1000, UTC),
        "time",
    ),
    "hours_since_first": (lambda fs: (READ_MS - min(f.time_ms for f in fs)) / 3_600_000, "approx"),
}

# The automatic default of each compare kind's attributes when nothing matched.
_ZERO_WHEN_EMPTY = {"revenue": 0.0, "cart_value_added": 0.0}


def _check(name: str, got: Any, expected: Any, how: str) -> None:
    if how == "exact":
        assert got == expected, name
    elif how == "approx":
        if expected is None:
            assert got == _ZERO_WHEN_EMPTY.get(name), name
        else:
            assert got == pytest.approx(expected, rel=1e-12), name
    elif how == "one_of":
        assert got in expected, name
    elif how == "counts":
        assert got == expected, name
        assert list(got.values()) == sorted(got.values(), reverse=True), f"{name}: not by count"
    elif how == "time":
        # min/max of timestamps read as ISO 8601 text; compare the instants.
        assert (None if got is None else _iso(got)) == expected, name
    elif how == "hll":
        # HyperLogLog, ~1 % error; at these sizes an off-by-one is the most it may miss.
        assert abs(got - expected) <= max(1, round(0.02 * expected)), (name, got, expected)
    else:  # pragma: no cover - a typo in the table
        raise AssertionError(how)


@pytest.fixture(scope="module")
def reads(run: Replay) -> dict[tuple[str, str], dict[str, Any]]:
    """Every group of every entity read once at ``READ_MS`` (the tests below slice it)."""
    return {
        (group, entity): run.read(group, entity, version=1)
        for group, entities in (
            ("shopper", USERS),
            ("session", SESSIONS),
            ("ecom_user", ECOM_USERS),
        )
        for entity in entities
    }


def _check_group(
    reads: dict[tuple[str, str], dict[str, Any]],
    group: str,
    entities: dict[str, Facts],
    table: dict[str, Any],
    name: str,
) -> None:
    getter, how = table[name]
    checked = 0
    for entity_id, facts in entities.items():
        got = reads[(group, entity_id)][name]
        _check(f"{group}.{name}[{entity_id[:8]}]", got, getter(facts), how)
        checked += 1
    assert checked == len(entities) > 0


@pytest.mark.parametrize("name", sorted(SHOPPER_EXPECTED))
def test_shopper_attribute_matches_the_csv(
    reads: dict[tuple[str, str], dict[str, Any]], name: str
) -> None:
    _check_group(reads, "shopper", USERS, SHOPPER_EXPECTED, name)


@pytest.mark.parametrize("name", sorted(SESSION_EXPECTED))
def test_session_attribute_matches_the_csv(
    reads: dict[tuple[str, str], dict[str, Any]], name: str
) -> None:
    _check_group(reads, "session", SESSIONS, SESSION_EXPECTED, name)


@pytest.mark.parametrize("name", sorted(ECOM_USER_EXPECTED))
def test_custom_key_attribute_matches_the_csv(
    reads: dict[tuple[str, str], dict[str, Any]], name: str
) -> None:
    _check_group(reads, "ecom_user", ECOM_USERS, ECOM_USER_EXPECTED, name)


def test_every_attribute_of_every_group_has_an_expectation(run: Replay) -> None:
    tables = {
        "shopper": SHOPPER_EXPECTED,
        "session": SESSION_EXPECTED,
        "ecom_user": ECOM_USER_EXPECTED,
    }
    for group, table in tables.items():
        names = {a.name for a in run.catalog.group(group, 1).attributes}
        assert names == set(table), group


def test_the_groups_cover_every_aggregation(run: Replay) -> None:
    used = {
        a.slot.attribute.aggregation
        for (name, version), group in run.catalog.groups.items()
        for a in group.attributes
    }
    assert used == {
        "counter", "sum", "min", "max", "mean", "first", "last", "unique_list", "most_frequent",
        "least_frequent", "category_count", "approx_count_distinct", "time_since_last",
        "time_since_first",
    }  # fmt: skip


def _walk(value: Any) -> Iterable[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        value = list(value.values())
    if isinstance(value, list):
        for item in value:
            yield from _walk(item)


def test_the_groups_cover_every_operator_and_property_kind() -> None:
    nodes = list(_walk([SHOPPER, SESSION, ECOM_USER]))
    operators = {n["operator"] for n in nodes if "operator" in n}
    assert operators == {"=", "!=", "<", ">", "<=", ">=", "like", "in", "is null", "is not null"}
    properties = [n for n in nodes if "name" in n or "operation" in n]
    kinds = {n.get("type") for n in properties} & {"atomic", "event", "entity", "calculated"}
    assert kinds == {"atomic", "event", "entity", "calculated"}
    assert {n["operation"] for n in nodes if "operation" in n} >= {"concat", "sum", "coalesce"}
    assert any(n.get("index", 0) > 0 for n in nodes)
    assert any("date_part" in n for n in nodes)
    assert any("period" in n for n in nodes) and any("ttl" in n for n in nodes)


def test_one_row_per_entity_with_the_csv_counts_and_times(run: Replay) -> None:
    for key_name, entities in (
        ("domain_userid", USERS),
        ("domain_sessionid", SESSIONS),
        ("ecom_user_id", ECOM_USERS),
    ):
        assert run.entities(key_name) == set(entities), key_name
        for entity_id, facts in entities.items():
            row = run.row(key_name, entity_id)
            assert row is not None
            assert row.events == len(facts)
            assert row.first_ms == min(f.time_ms for f in facts)
            assert row.last_ms == max(f.time_ms for f in facts)
    # Rows without a key value are not routed: the mobile rows have no cookie ids.
    assert run.applied == sum(map(len, USERS.values())) + sum(map(len, SESSIONS.values())) + sum(
        map(len, ECOM_USERS.values())
    )


def test_the_workload_exercises_the_definitions() -> None:
    """Guards against vacuous expectations: the seed really hits each interesting branch."""
    facts = seed_facts()
    assert count(facts, action_is("add_to_cart")) == 38
    assert count(facts, action_is("transaction")) == 15
    assert count(facts, lambda f: len(f.products) >= 2) > 100  # entity index 1
    assert count(facts, lambda f: f.identity[0] == "ecommerce.tracking") == 774
    assert count(facts, lambda f: f.identity == (ECOM, "snowplow_ecommerce_action", "1-0-1")) == 10
    assert len(ECOM_USERS) == 2
    # The 30-day window keeps all, some or none of a shopper's events.
    in_window = [SHOPPER_EXPECTED["events_30d"][0](fs) for fs in USERS.values()]
    totals = [len(fs) for fs in USERS.values()]
    assert any(0 < n == total for n, total in zip(in_window, totals, strict=True))
    assert any(0 < n < total for n, total in zip(in_window, totals, strict=True))
    assert any(n == 0 for n in in_window)
    # No event near the 30-day window edge, where the tiles make the edge fuzzy (1 bucket).
    edge = READ_MS - 30 * _DAY_MS
    assert not [f for f in facts if edge - 2 * _DAY_MS <= f.time_ms < edge]
