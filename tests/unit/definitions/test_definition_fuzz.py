"""Property-based tests of the definition parsers (the registry's request bodies).

Whatever body a client sends, ``AttributeGroup.parse``, ``AttributeKey.parse`` and
``RuleIntervention.parse`` either return a definition or raise ``DefinitionError`` (the
registry's 422): never another exception, which the API would turn into a 500. Three sources
of bodies:

* arbitrary JSON-ish values, JSON text and bytes;
* the SDK's captured bodies with one random edit (a value replaced, a key removed or added),
  which reach the validators far deeper than random noise does;
* bodies generated from the Signals wire model (``shared/reference/signals.md`` §1.2-§1.6),
  valid by construction: they must parse, and every body that parses round-trips
  (``parse(x.to_wire()) == x``).
"""

from __future__ import annotations

import json
import string
from functools import cache
from typing import Any, TypeVar

import orjson
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from signals_stream.definitions import AttributeGroup, AttributeKey
from signals_stream.errors import DefinitionError
from signals_stream.interventions import RuleIntervention
from tests.datafiles import DATA_DIR

M = TypeVar("M", AttributeGroup, AttributeKey, RuleIntervention)

_CAPTURE = DATA_DIR / "signals-sdk-wire-capture" / "capture-signals-py-0.4.10.json"
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
VALID = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- bodies of the SDK wire capture --------------------------------------------------------------


@cache
def _captured(prefix: str) -> tuple[dict[str, Any], ...]:
    """Every captured request body sent to a path starting with ``prefix``."""
    steps = json.loads(_CAPTURE.read_text())
    return tuple(
        request["body"]
        for step in steps
        for request in step["requests"]
        if request["path"].startswith(prefix) and isinstance(request["body"], dict)
    )


def _captured_groups() -> tuple[dict[str, Any], ...]:
    return _captured("/api/v1/registry/attribute_groups/")


def _captured_keys() -> tuple[dict[str, Any], ...]:
    embedded = tuple(g["attribute_key"] for g in _captured_groups())
    return _captured("/api/v1/registry/attribute_keys/") + embedded


def _captured_rules() -> tuple[dict[str, Any], ...]:
    return _captured("/api/v1/registry/interventions/")


def test_the_capture_has_bodies_of_every_kind() -> None:
    assert _captured_groups() and _captured_keys() and _captured_rules()


# --- the property ------------------------------------------------------------------------------


def _parse_or_definition_error(model: type[M], body: Any) -> M | None:
    """The parsed definition, or None when the body was refused with a DefinitionError; any
    other exception fails the test (the ``raise`` keeps its traceback)."""
    try:
        return model.parse(body)
    except DefinitionError as exc:
        assert str(exc), "a DefinitionError names what is wrong"
        return None


def _strict_json(body: Any) -> bool:
    """Whether ``body`` can be a JSON request body: no NaN or infinities (which never equal
    themselves) and no lone surrogates (not encodable as UTF-8)."""
    try:
        json.dumps(body, allow_nan=False, ensure_ascii=False).encode()
    except ValueError:  # UnicodeEncodeError is one
        return False
    return True


def _round_trips(model: type[M], parsed: M) -> None:
    wire = parsed.to_wire()
    again = model.parse(wire)
    assert again == parsed, (wire, again.to_wire())
    assert again.to_wire() == wire
    # The wire form is JSON: it survives encoding, and parses from text the same way.
    assert model.parse(orjson.dumps(wire)) == parsed


MODELS: tuple[type[Any], ...] = (AttributeGroup, AttributeKey, RuleIntervention)


# --- 1. arbitrary JSON-ish values ----------------------------------------------------------------

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(
        ["", "PT15M", "P1Y", "-PT1S", "P0D", "P9999999999D", "1e309", "\x00", "$", "a.b[0]", "%"]
    )
)
_KEYS = st.sampled_from(
    [
        "name", "version", "attribute_key", "attributes", "type", "aggregation", "property",
        "events", "criteria", "period", "ttl", "owner", "offline", "fields", "batch_source",
        "key", "external_column", "all", "any", "none", "attribute", "operator", "value",
        "target_attribute_keys", "payload_attribute_groups", "is_published", "path", "vendor",
        "major_version", "index", "operation", "properties", "time_unit", "default_value",
        "date_part", "separator",
    ]
) | st.text(max_size=8)  # fmt: skip
JSONISH = st.recursive(
    _SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_KEYS, children, max_size=6),
    max_leaves=25,
)


@FUZZ
@given(body=st.dictionaries(_KEYS, JSONISH, max_size=8))
# Durations beyond timedelta's range (about 2.7 million years) must be refused, not overflow.
@example(body={"name": "app_id", "ttl": "P9999999999D"})
@example(body={"name": "app_id", "ttl": 1e15})
def test_arbitrary_objects_validate_or_raise_definition_error(body: dict[str, Any]) -> None:
    for model in MODELS:
        parsed = _parse_or_definition_error(model, body)
        if parsed is not None and _strict_json(body):
            _round_trips(model, parsed)


@FUZZ
@given(body=JSONISH)
def test_arbitrary_values_validate_or_raise_definition_error(body: Any) -> None:
    for model in MODELS:
        _parse_or_definition_error(model, body)


@FUZZ
@given(
    raw=st.binary(max_size=64)
    | st.text(max_size=64)
    | JSONISH.map(lambda v: json.dumps(v, allow_nan=True))
    | JSONISH.map(lambda v: json.dumps(v, allow_nan=True).encode())
)
def test_arbitrary_text_and_bytes_validate_or_raise_definition_error(raw: str | bytes) -> None:
    for model in MODELS:
        _parse_or_definition_error(model, raw)


# --- 2. captured bodies with one random edit ----------------------------------------------------


def _paths(value: Any, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every location inside a JSON document (the root excluded)."""
    found: list[tuple[str | int, ...]] = []
    items: list[tuple[str | int, Any]] = []
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    for key, child in items:
        path = (*prefix, key)
        found.append(path)
        found.extend(_paths(child, path))
    return found


def _edited(body: Any, path: tuple[str | int, ...], edit: str, new: Any, extra_key: str) -> Any:
    """A deep copy of ``body`` with the node at ``path`` replaced, removed, or (objects only)
    given one more key."""
    copy = json.loads(json.dumps(body))
    parent = copy
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if edit == "replace":
        parent[last] = new
    elif edit == "remove":
        del parent[last]
    elif isinstance(parent[last], dict):
        parent[last][extra_key] = new
    else:
        parent[last] = [parent[last], new]
    return copy


@st.composite
def _mutations(draw: st.DrawFn, bodies: tuple[dict[str, Any], ...]) -> Any:
    body = draw(st.sampled_from(bodies))
    paths = _paths(body)
    path = draw(st.sampled_from(paths))
    edit = draw(st.sampled_from(["replace", "remove", "add"]))
    return _edited(body, path, edit, draw(JSONISH), draw(_KEYS))


@FUZZ
@given(body=_mutations(_captured_groups()))
def test_edited_group_bodies_validate_or_raise_definition_error(body: Any) -> None:
    parsed = _parse_or_definition_error(AttributeGroup, body)
    if parsed is not None and _strict_json(body):
        _round_trips(AttributeGroup, parsed)


@FUZZ
@given(body=_mutations(_captured_keys()))
def test_edited_key_bodies_validate_or_raise_definition_error(body: Any) -> None:
    parsed = _parse_or_definition_error(AttributeKey, body)
    if parsed is not None and _strict_json(body):
        _round_trips(AttributeKey, parsed)


@FUZZ
@given(body=_mutations(_captured_rules()))
def test_edited_rule_bodies_validate_or_raise_definition_error(body: Any) -> None:
    parsed = _parse_or_definition_error(RuleIntervention, body)
    if parsed is not None and _strict_json(body):
        _round_trips(RuleIntervention, parsed)


# --- 3. bodies valid by construction ------------------------------------------------------------

NAMES = st.text(alphabet=string.ascii_letters + string.digits + "_", min_size=1, max_size=128)
TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40)
OWNER = st.emails().filter(lambda e: len(e) <= 255)
# ISO 8601 durations as pydantic (hence the SDK) writes them, plus other valid spellings.
DURATIONS = st.sampled_from(
    ["PT1S", "PT90S", "PT15M", "PT30M", "PT1H", "PT6H", "P1D", "P1DT12H", "P7D", "P30D",
     "P1Y", "P1Y35D", "P1W", "PT1.5H"]
)  # fmt: skip
_EVENT_SELECTORS = st.lists(
    st.sampled_from(
        [
            {"vendor": "com.snowplowanalytics.snowplow", "name": "page_view", "version": "1-0-0"},
            {"vendor": "com.snowplowanalytics.snowplow", "name": "page_ping"},
            {"vendor": "com.google.analytics", "name": "event", "version": "1-0-0"},
            {"vendor": "com.snowplowanalytics.snowplow.ecommerce"},
            {"name": "snowplow_ecommerce_action"},
        ]
    ),
    max_size=3,
    unique_by=lambda e: json.dumps(e, sort_keys=True),
)
_STRING_COLUMNS = ["page_url", "page_urlpath", "page_title", "app_id", "geo_country", "useragent"]
_NUMBER_COLUMNS = ["pp_yoffset_max", "doc_height", "se_value", "tr_total", "br_viewwidth"]
_PATHS = st.sampled_from(["price", "id", "$.user.profile.name", "items[0].value", "a.b[2]"])


@st.composite
def _schema_property(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    """An event or entity property (``kind``), any path of the allowed JSONPath subset."""
    prop: dict[str, Any] = {
        "type": kind,
        "vendor": draw(st.sampled_from(["com.acme", "com.snowplowanalytics.snowplow"])),
        "name": draw(st.sampled_from(["product", "web_page", "cart"])),
        "major_version": draw(st.integers(min_value=1, max_value=9)),
        "path": draw(_PATHS),
    }
    if kind == "entity" and draw(st.booleans()):
        prop["index"] = draw(st.integers(min_value=0, max_value=5))
    return prop


def _value_property(columns: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.sampled_from(columns).map(lambda c: {"type": "atomic", "name": c}) | st.sampled_from(
        ["event", "entity"]
    ).flatmap(_schema_property)


@st.composite
def _attribute_criteria(draw: st.DrawFn) -> dict[str, Any]:
    def criterion() -> st.SearchStrategy[dict[str, Any]]:
        text_prop = _value_property(_STRING_COLUMNS)
        number_prop = _value_property(_NUMBER_COLUMNS)
        words = st.text(alphabet=string.ascii_letters + "/%_-", min_size=1, max_size=12)
        return st.one_of(
            st.builds(lambda p, v: {"property": p, "operator": "=", "value": v}, text_prop, words),
            st.builds(lambda p, v: {"property": p, "operator": "!=", "value": v}, text_prop, words),
            st.builds(
                lambda p, v: {"property": p, "operator": "like", "value": v}, text_prop, words
            ),
            st.builds(
                lambda p, o, v: {"property": p, "operator": o, "value": v},
                number_prop,
                st.sampled_from(["<", ">", "<=", ">="]),
                st.integers(-1000, 1000) | st.floats(-1e6, 1e6, allow_nan=False),
            ),
            st.builds(
                lambda p, v: {"property": p, "operator": "in", "value": v},
                text_prop,
                st.lists(words, min_size=1, max_size=4),
            ),
            st.builds(
                lambda p, o: {"property": p, "operator": o},
                text_prop,
                st.sampled_from(["is null", "is not null"]),
            ),
        )

    blocks = draw(st.sets(st.sampled_from(["all", "any"]), min_size=1))
    return {b: draw(st.lists(criterion(), min_size=1, max_size=3)) for b in sorted(blocks)}


# (aggregation, result types, property strategy or None, extra fields)
def _attribute_shapes() -> list[tuple[str, list[str], st.SearchStrategy[Any] | None]]:
    text = _value_property(_STRING_COLUMNS)
    number = _value_property(_NUMBER_COLUMNS)
    return [
        ("counter", ["int32", "int64"], None),
        ("sum", ["int64", "double"], number),
        ("min", ["int64", "double", "float"], number),
        ("max", ["int64", "double", "float"], number),
        ("mean", ["double", "float"], number),
        ("first", ["string"], text),
        ("last", ["string"], text),
        ("most_frequent", ["string"], text),
        ("least_frequent", ["string"], text),
        ("unique_list", ["string_list"], text),
        ("category_count", ["dict"], text),
        ("approx_count_distinct", ["int64", "int32"], text),
        ("time_since_last", ["double", "float"], None),
        ("time_since_first", ["double", "float"], None),
    ]


@st.composite
def _attributes(draw: st.DrawFn, name: str) -> dict[str, Any]:
    aggregation, types, prop = draw(st.sampled_from(_attribute_shapes()))
    attribute: dict[str, Any] = {
        "name": name,
        "type": draw(st.sampled_from(types)),
        "events": draw(_EVENT_SELECTORS),
        "aggregation": aggregation,
    }
    if prop is not None:
        attribute["property"] = draw(prop)
    if aggregation.startswith("time_since"):
        attribute["time_unit"] = draw(st.sampled_from(["s", "min", "h", "d"]))
    if draw(st.booleans()):
        attribute["criteria"] = draw(_attribute_criteria())
    lifetime = draw(st.sampled_from(["lifetime", "period", "ttl"]))
    if lifetime == "period":
        attribute["period"] = draw(DURATIONS)
    elif lifetime == "ttl":
        attribute["ttl"] = draw(DURATIONS)
    if aggregation in {"counter", "sum", "approx_count_distinct"} and draw(st.booleans()):
        attribute["default_value"] = 0
    if draw(st.booleans()):
        attribute["description"] = draw(TEXT)
    return attribute


BUILTIN_KEY_BODIES = [
    {"name": n, "key": n, "description": f"The {n}.", "is_published": False}
    for n in ("domain_userid", "domain_sessionid", "network_userid", "user_id")
] + [{"name": "domain_userid"}, {"name": "domain_sessionid"}]


@st.composite
def _custom_keys(draw: st.DrawFn) -> dict[str, Any]:
    key: dict[str, Any] = {
        "name": draw(NAMES),
        "property": draw(
            st.sampled_from(["app_id", "user_id", "page_urlhost", "geo_country"]).map(
                lambda c: {"type": "atomic", "name": c}
            )
            | st.sampled_from(["event", "entity"]).flatmap(_schema_property)
        ),
    }
    for field, strategy in (("owner", OWNER), ("ttl", DURATIONS), ("description", TEXT)):
        if draw(st.booleans()):
            key[field] = draw(strategy)
    key["is_published"] = draw(st.booleans())
    return key


KEYS = st.sampled_from(BUILTIN_KEY_BODIES) | _custom_keys()


@st.composite
def _groups(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(NAMES, min_size=1, max_size=6, unique=True))
    group: dict[str, Any] = {
        "name": draw(NAMES),
        "version": draw(st.integers(min_value=1, max_value=1000)),
        "attribute_key": draw(KEYS),
        "owner": draw(OWNER),
        "attributes": [draw(_attributes(n)) for n in names],
        "is_published": draw(st.booleans()),
    }
    if draw(st.booleans()):
        group["ttl"] = draw(DURATIONS)
    if draw(st.booleans()):
        group["online"], group["offline"] = True, False
    if draw(st.booleans()):
        group["description"] = draw(TEXT)
    return group


_RULE_VALUE = {
    "=": st.integers(-50, 50) | st.text(max_size=6) | st.booleans(),
    "!=": st.integers(-50, 50) | st.text(max_size=6) | st.booleans(),
    "<": st.integers(-50, 50) | st.floats(-1e6, 1e6, allow_nan=False),
    ">": st.integers(-50, 50) | st.floats(-1e6, 1e6, allow_nan=False),
    "<=": st.integers(-50, 50),
    ">=": st.integers(-50, 50),
    "like": st.text(alphabet=string.ascii_letters + "%_/", max_size=10),
    "not like": st.text(alphabet=string.ascii_letters + "%_/", max_size=10),
    "rlike": st.sampled_from(["^/products/[0-9]+$", "cart", "(?i)checkout", "a|b", "x{2,5}"]),
    "not rlike": st.sampled_from(["^/$", "[a-z]+", "foo.*bar"]),
    "in": st.lists(st.integers(-5, 5), min_size=1, max_size=4)
    | st.lists(st.text(max_size=5), min_size=1, max_size=4),
    "not in": st.lists(st.text(max_size=5), min_size=1, max_size=4),
}


@st.composite
def _rule_criterion(draw: st.DrawFn, *, allow_changed: bool) -> dict[str, Any]:
    attribute = f"{draw(NAMES.map(lambda n: n[:40]))}:{draw(NAMES.map(lambda n: n[:40]))}"
    operators = [*_RULE_VALUE, "is null", "is not null"] + (["changed"] if allow_changed else [])
    operator = draw(st.sampled_from(operators))
    criterion: dict[str, Any] = {"attribute": attribute, "operator": operator}
    if operator in _RULE_VALUE:
        criterion["value"] = draw(_RULE_VALUE[operator])
    return criterion


def _rule_criteria(depth: int, *, allow_changed: bool = True) -> st.SearchStrategy[Any]:
    leaf = _rule_criterion(allow_changed=allow_changed)
    if depth == 0:
        return leaf

    def block(kind: str) -> st.SearchStrategy[Any]:
        # `changed` is valid alone or under `all` blocks only.
        inner = _rule_criteria(depth - 1, allow_changed=allow_changed and kind == "all")
        return st.lists(inner, min_size=1, max_size=3).map(lambda items: {kind: items})

    return leaf | block("all") | block("any") | block("none")


@st.composite
def _rules(draw: st.DrawFn) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "name": draw(NAMES),
        "version": draw(st.integers(min_value=1, max_value=100)),
        "owner": draw(OWNER),
        "is_published": draw(st.booleans()),
        "criteria": draw(_rule_criteria(3)),
    }
    if draw(st.booleans()):
        rule["description"] = draw(TEXT)
    if draw(st.booleans()):
        rule["target_attribute_keys"] = [
            {"name": n}
            for n in draw(st.lists(st.sampled_from(["domain_userid", "user_id"]), min_size=1))
        ]
    if draw(st.booleans()):
        rule["payload_attribute_groups"] = [
            {"name": draw(NAMES), "version": draw(st.integers(min_value=1, max_value=9))}
        ]
    return rule


@VALID
@given(body=KEYS)
def test_generated_keys_are_valid_and_round_trip(body: dict[str, Any]) -> None:
    key = AttributeKey.parse(body)
    assert key.name == body["name"]
    _round_trips(AttributeKey, key)


@VALID
@given(body=_groups())
def test_generated_groups_are_valid_and_round_trip(body: dict[str, Any]) -> None:
    group = AttributeGroup.parse(body)
    assert group.name == body["name"] and group.version == body["version"]
    assert [a.name for a in group.attributes or ()] == [a["name"] for a in body["attributes"]]
    _round_trips(AttributeGroup, group)


@VALID
@given(body=_rules())
def test_generated_rules_are_valid_and_round_trip(body: dict[str, Any]) -> None:
    rule = RuleIntervention.parse(body)
    assert (rule.name, rule.version) == (body["name"], body["version"])
    _round_trips(RuleIntervention, rule)


@VALID
@given(body=_rules(), block=st.sampled_from(["any", "none"]))
def test_changed_outside_all_is_a_definition_error(body: dict[str, Any], block: str) -> None:
    changed = {"attribute": "g:a", "operator": "changed"}
    bad = {**body, "criteria": {block: [changed]}}
    assume(_parse_or_definition_error(RuleIntervention, body) is not None)
    assert _parse_or_definition_error(RuleIntervention, bad) is None


@VALID
@given(body=_groups(), period=DURATIONS, ttl=DURATIONS)
def test_period_with_ttl_is_a_definition_error(body: dict[str, Any], period: str, ttl: str) -> None:
    attributes = [{**body["attributes"][0], "period": period, "ttl": ttl}]
    assert _parse_or_definition_error(AttributeGroup, {**body, "attributes": attributes}) is None
