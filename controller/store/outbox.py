"""The outbox: messages written in the same transaction as the change they announce.

The store does not know the MQTT contract: whoever opens it hands it an :class:`Announcer`
(``controller/mqtt/topics.Topics``) that words each change as a message.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from controller.domain.alarms import AlarmChange
from controller.store.schema import outbox


@dataclass(frozen=True, slots=True)
class Message:
    """One MQTT publish: QoS 1 always."""

    topic: str
    payload: bytes
    retain: bool


class Announcer(Protocol):
    """Words the changes the store announces as messages."""

    def alarm(self, change: AlarmChange) -> Message:
        """An alarm's state after ``change``."""
        ...

    def event(self, kind: str, at: datetime, **fields: Any) -> Message:
        """A one-off event of ``kind``."""
        ...


async def enqueue(conn: AsyncConnection, messages: Iterable[Message], at: datetime) -> None:
    """Messages into the outbox, in this transaction: they leave with its commit or never."""
    for message in messages:
        await conn.execute(sa.insert(outbox).values(
            topic=message.topic, payload=message.payload, retain=message.retain,
            created_at=at))
