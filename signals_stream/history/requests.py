"""Request models of the history endpoints, exactly as SDK 0.4.10 sends them."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import ConfigDict, Field, StringConstraints

from signals_stream.definitions import AttributeGroup
from signals_stream.definitions._base import DefinitionModel
from signals_stream.definitions.durations import Duration
from signals_stream.interventions import RuleIntervention

__all__ = ["MAX_APP_IDS", "MAX_TEST_IDS", "GroupTestRequest", "PreviewRequest"]

MAX_TEST_IDS = 50  # TestAttributeGroupRequest.attribute_key_ids
MAX_APP_IDS = 10  # TestAttributeGroupRequest.app_ids, TestInterventionRequest.app_ids
MAX_SAMPLE = 100

_Id = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
_AppId = Annotated[str, StringConstraints(min_length=1, max_length=255)]


class GroupTestRequest(DefinitionModel):
    """``POST testing/attribute_groups/`` (the SDK's ``TestAttributeGroupRequest``): compute an
    unpublished group over the recent ``window`` of events for some ids.

    Args:
        attribute_group: the group, as the SDK sends it (published or not).
        attribute_key_ids: ids of the group's key; none: 10 ids seen in the window.
        app_ids: only events of these apps; none: every app.
        window: how far back to read, from now.
    """

    model_config = ConfigDict(extra="ignore")

    attribute_group: AttributeGroup
    attribute_key_ids: tuple[_Id, ...] | None = Field(None, max_length=MAX_TEST_IDS)
    app_ids: tuple[_AppId, ...] | None = Field(None, max_length=MAX_APP_IDS)
    window: Duration = timedelta(hours=1)


class PreviewRequest(DefinitionModel):
    """``POST testing/interventions/`` (the SDK's ``TestInterventionRequest``, plus ``sample``):
    who matches a rule now, and how often it would have fired over the recent ``window``.

    Args:
        intervention: the rule intervention, published or not.
        app_ids: only events of these apps count for the firings; none: every app.
        window: how far back to replay the log for the firings, from now.
        sample: at most this many matching ids per target key in the answer.
    """

    model_config = ConfigDict(extra="ignore")

    intervention: RuleIntervention
    app_ids: tuple[_AppId, ...] | None = Field(None, max_length=MAX_APP_IDS)
    window: Duration = timedelta(hours=1)
    sample: int = Field(10, ge=0, le=MAX_SAMPLE)
