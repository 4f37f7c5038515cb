"""The dataset request models read what SDK 0.4.10 sends, and bad bodies name the field."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from snowplow_signals import (
    AtomicProperty,
    Attribute,
    AttributeGroup,
    Criteria,
    Criterion,
    Event,
    domain_sessionid,
)
from snowplow_signals.models.dataset import (
    DatasetAttributeGroups,
    SessionAnchors,
    UserSuppliedAnchors,
    WarehouseTable,
)
from snowplow_signals.models.model import DatasetBundleRequest as SdkRequest
from snowplow_signals.models.model import TrainingSpan

from signals_stream.datasets.models import DatasetBundleRequest, EventAnchors
from signals_stream.errors import DefinitionError

_SPAN = TrainingSpan(
    start_time=datetime(2020, 1, 1, tzinfo=UTC), end_time=datetime(2021, 1, 1, tzinfo=UTC)
)


def _group() -> AttributeGroup:
    views = Attribute(
        name="views", type="int32", aggregation="counter", events=[Event(name="page_view")]
    )
    return AttributeGroup(
        name="g", version=1, attribute_key=domain_sessionid, owner="a@b.c", attributes=[views]
    )


def _body(anchors: Any) -> dict[str, Any]:
    request = SdkRequest(
        anchors=anchors, attributes=DatasetAttributeGroups(attribute_groups=[_group()])
    )
    return request.model_dump(mode="json", exclude_none=True, by_alias=True)


def _session_body() -> dict[str, Any]:
    goal = Criteria(all=[Criterion.eq(AtomicProperty(name="event_name"), "transaction")])
    return _body(SessionAnchors(goal_criteria=goal, training_span=_SPAN))


def test_session_anchors_as_the_sdk_sends_them() -> None:
    request = DatasetBundleRequest.parse(_session_body())
    anchors = request.anchors
    assert anchors.mode == "session"
    assert [e.name for e in anchors.excluded_events or ()] == ["page_ping"]
    assert (anchors.min_events, anchors.max_negative_ratio, anchors.max_anchors_per_session) == (
        1,
        5.0,
        None,
    )
    assert request.attributes.prefix == "signals_attributes"
    assert request.seed == 0


def test_user_supplied_anchors_as_the_sdk_sends_them() -> None:
    source = WarehouseTable(database="shop", schema="public", table="my_anchors")
    request = DatasetBundleRequest.parse(_body(UserSuppliedAnchors(source=source, has_label=False)))
    assert request.anchors.mode == "user_supplied"
    assert request.anchors.source.schema_ == "public"
    assert request.anchors.has_label is False


def test_event_anchors_are_ours() -> None:
    body = _session_body()
    body["anchors"] = {
        "mode": "event",
        "criteria": body["anchors"]["goal_criteria"],
        "training_span": body["anchors"]["training_span"],
        "max_anchors_per_session": 3,
    }
    assert isinstance(DatasetBundleRequest.parse(body).anchors, EventAnchors)


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        (("anchors", "min_events"), -1, "anchors.session.min_events"),
        (("anchors", "max_negative_ratio"), 0, "anchors.session.max_negative_ratio"),
        (("anchors", "max_anchors_per_session"), 0, "anchors.session.max_anchors_per_session"),
        (("anchors", "training_span", "end_time"), "2019-01-01T00:00:00Z", "end_time"),
        (("anchors", "mode"), "hourly", "anchors"),
        (("attributes", "attribute_groups"), [], "attributes.attribute_groups"),
        (("attributes", "table_prefix"), "no spaces", "attributes.table_prefix"),
        (("max_lookback_days",), 0, "max_lookback_days"),
    ],
)
def test_bad_bodies_name_the_field(path: tuple[str, ...], value: Any, named: str) -> None:
    body = _session_body()
    node = body
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    with pytest.raises(DefinitionError, match=named.replace(".", r"\.")):
        DatasetBundleRequest.parse(body)


def test_a_group_without_attributes_is_refused() -> None:
    body = _session_body()
    body["attributes"]["attribute_groups"][0]["attributes"] = None
    with pytest.raises(DefinitionError, match="attribute_groups.0"):
        DatasetBundleRequest.parse(body)
