"""The batch engine's reference group (``ecommerce_batch.yaml``), as a batch group and as the
same attributes computed by the stream."""

from __future__ import annotations

from pathlib import Path

from signals_stream.definitions import AttributeGroup
from signals_stream.registry.loader import load_definitions

__all__ = ["GROUP_FILE", "batch_group", "stream_group"]

GROUP_FILE = Path(__file__).with_name("ecommerce_batch.yaml")


def batch_group() -> AttributeGroup:
    (group,) = load_definitions(GROUP_FILE).groups
    return group


def stream_group() -> AttributeGroup:
    return AttributeGroup.parse({**batch_group().to_wire(), "offline": False})
