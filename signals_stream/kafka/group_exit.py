"""Leaving a consumer group promptly, on any broker.

aiokafka sends LeaveGroup on stop only when the member's generation is above 0, but the
embedded broker (Tansu) numbers a group's first generation 0: a worker stopped cleanly there
kept its partitions until its session timed out, and the other workers waited that long (17 s
measured with a 10 s session, against 8 s after a LeaveGroup) before taking them over. A
consumer's group and member are read before it stops (stopping forgets them) and the member
leaves through a short-lived client of its own afterwards.

``abandon_pending_join`` is for a consumer stopped while its first join is still pending:
aiokafka's ``stop()`` lets that JoinGroup finish first, which on the embedded broker takes
about half the session timeout. A member that never joined holds nothing to commit or hand
over, so its coordination task is cancelled instead. aiokafka has no public API for either;
both read or cancel its coordinator's state, and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any, NamedTuple

from aiokafka import AIOKafkaConsumer
from aiokafka.client import AIOKafkaClient, CoordinationType
from aiokafka.errors import KafkaError
from aiokafka.protocol.group import LeaveGroupRequest

__all__ = ["GroupMember", "abandon_pending_join", "leave_group", "member_left_behind"]

logger = logging.getLogger(__name__)

_LEAVE_TIMEOUT_S = 5.0  # a best effort: the session timeout removes the member anyway


class GroupMember(NamedTuple):
    group_id: str
    member_id: str


def member_left_behind(consumer: AIOKafkaConsumer | None) -> GroupMember | None:
    """The member aiokafka's ``stop()`` will not take out of its group (generation 0), if any.

    Read it before stopping the consumer: stopping resets the member id."""
    coordinator = getattr(consumer, "_coordinator", None)
    if coordinator is None or coordinator.generation != 0 or not coordinator.member_id:
        return None
    return GroupMember(str(coordinator.group_id), str(coordinator.member_id))


async def leave_group(
    bootstrap: list[str], member: GroupMember, auth: Mapping[str, Any] | None = None
) -> None:
    """Send ``member``'s LeaveGroup to its coordinator; a failure is logged, never raised."""
    client = AIOKafkaClient(bootstrap_servers=bootstrap, **(auth or {}))
    try:
        async with asyncio.timeout(_LEAVE_TIMEOUT_S):
            await client.bootstrap()
            node = await client.coordinator_lookup(CoordinationType.GROUP, member.group_id)
            await client.send(node, LeaveGroupRequest(member.group_id, member.member_id))
        logger.info("left group %s", member.group_id)
    except (KafkaError, TimeoutError, OSError) as exc:
        logger.warning("could not leave group %s: %r", member.group_id, exc)
    finally:
        await client.close()


async def abandon_pending_join(consumer: AIOKafkaConsumer, joining: asyncio.Future[None]) -> None:
    """Cancel ``consumer``'s start (``joining``) and its coordination task if the start has not
    returned yet, i.e. its first join is still pending; then ``consumer.stop()`` is prompt."""
    if joining.done():
        return
    joining.cancel()
    coordinator = getattr(consumer, "_coordinator", None)
    task = getattr(coordinator, "_coordination_task", None)
    if isinstance(task, asyncio.Task) and not task.done():
        task.cancel()
    for pending in (joining, task):
        if pending is not None:
            with contextlib.suppress(asyncio.CancelledError, KafkaError):
                await pending
