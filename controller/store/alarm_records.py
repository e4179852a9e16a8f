"""The store's alarms, their history, robots out of service, and the MQTT outbox."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from controller.domain.alarms import Alarm, AlarmChange, AlarmState, AlarmType, Priority
from controller.store.audit_records import record
from controller.store.outbox import Message, enqueue
from controller.store.schema import alarm_events, alarms, outbox, store_info
from controller.store.stock import BinRecord, bin_records
from controller.store.writes import discard, write_transaction

if TYPE_CHECKING:
    from controller.store.store import Store

OUT_OF_SERVICE = "out_of_service:"
"""store_info keys naming a robot down for maintenance."""

Decide = Callable[[Mapping[str, Alarm], list[BinRecord], frozenset[str]], list[AlarmChange]]
"""Given the alarms, the bins and the robots out of service, the changes to make."""


@dataclass(frozen=True, slots=True)
class AlarmEvent:
    """One recorded change of an alarm's state."""

    alarm_id: str
    from_state: str | None
    to_state: str
    who: str
    reason: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message waiting in the outbox."""

    id: int
    message: Message




class AlarmRecords:
    """The alarms' half of the store (mixed into Store)."""

    def __init__(self, db: Store) -> None:
        self._db = db

    async def alarms(self, *, standing_only: bool = True) -> list[Alarm]:
        """Alarms that stand (not normal), or every alarm ever raised."""
        async with self._db.engine.connect() as conn:
            found = await _alarms(conn)
        return [a for a in found.values() if not standing_only or a.state is not AlarmState.NORMAL]

    async def change_alarms(self, decide: Decide, *,
                            service: tuple[str, bool, str] | None = None) -> list[AlarmChange]:
        """Decide and record alarm changes in one transaction, with their messages.

        ``service`` = (robot, in service?, who) first takes a robot out of service or
        brings it back, audited.
        """
        now = self._db.clock.now()
        async with self._db.transaction() as conn:
            if service is not None:
                robot, in_service, who = service
                key = OUT_OF_SERVICE + robot
                was_down = robot in await robots_out_of_service(conn)
                await conn.execute(sa.delete(store_info).where(store_info.c.key == key))
                if not in_service:
                    await conn.execute(sa.insert(store_info).values(key=key, value=now.isoformat()))
                await record(conn, now, who, "robot back in service" if in_service else
                             "robot out of service", f"robot:{robot}",
                             {"in_service": not was_down}, {"in_service": in_service})
            down = await robots_out_of_service(conn)
            current = await _alarms(conn)
            changes = decide(current, await bin_records(conn), down)
            if not changes and service is None:
                discard(conn)  # nothing changed: no commit, no disk write
                return changes
            for change in changes:
                await _save(conn, change, now)
            if self._db.topics is not None:
                topics = self._db.topics
                await enqueue(conn, [topics.alarm(c) for c in changes], now)
            return changes

    async def out_of_service(self) -> frozenset[str]:
        """Robots down for maintenance."""
        async with self._db.engine.connect() as conn:
            return await robots_out_of_service(conn)

    async def alarm_history(self, alarm_id: str | None = None) -> list[AlarmEvent]:
        """Every recorded state change (of one alarm, when given), oldest first."""
        query = sa.select(alarm_events.c.alarm_id, alarm_events.c.from_state,
                          alarm_events.c.to_state, alarm_events.c.who, alarm_events.c.reason,
                          alarm_events.c.at).order_by(alarm_events.c.id)
        if alarm_id is not None:
            query = query.where(alarm_events.c.alarm_id == alarm_id)
        async with self._db.engine.connect() as conn:
            return [AlarmEvent(*row) for row in (await conn.execute(query)).all()]

    async def raised_since(self, moment: datetime) -> int:
        """How many alarms were raised (newly announced) since ``moment``."""
        query = sa.select(sa.func.count()).select_from(alarm_events).where(
            alarm_events.c.at >= moment, alarm_events.c.to_state == AlarmState.UNACK_ACTIVE,
            sa.or_(alarm_events.c.from_state.is_(None),
                   alarm_events.c.from_state.in_([AlarmState.NORMAL, AlarmState.UNACK_RTN])))
        async with self._db.engine.connect() as conn:
            return int(await conn.scalar(query) or 0)

    # -- the outbox ------------------------------------------------------------------------

    async def enqueue(self, messages: Iterable[Message]) -> None:
        """Messages that no other record causes (a robot's state), into the outbox."""
        async with self._db.transaction() as conn:
            await enqueue(conn, messages, self._db.clock.now())

    async def outbox(self, limit: int = 100) -> list[Outgoing]:
        """The oldest messages not yet acknowledged by the broker, in order."""
        query = sa.select(outbox).order_by(outbox.c.id).limit(limit)
        async with self._db.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [Outgoing(row["id"], Message(row["topic"], row["payload"], row["retain"]))
                for row in rows]

    async def sent(self, message_id: int) -> None:
        """The broker acknowledged a message: it leaves the outbox."""
        async with write_transaction(self._db.receipts, self._db.receipts_lock,
                                     self._db.own_commit) as conn:
            await conn.execute(sa.delete(outbox).where(outbox.c.id == message_id))


async def robots_out_of_service(conn: AsyncConnection) -> frozenset[str]:
    """Robots down for maintenance, in a connection's view."""
    keys = (await conn.scalars(sa.select(store_info.c.key).where(
        store_info.c.key.startswith(OUT_OF_SERVICE)))).all()
    return frozenset(key.removeprefix(OUT_OF_SERVICE) for key in keys)


async def _alarms(conn: AsyncConnection) -> dict[str, Alarm]:
    rows = (await conn.execute(sa.select(alarms))).mappings().all()
    return {row["id"]: _alarm(row) for row in rows}


def _alarm(row: Any) -> Alarm:
    values = dict(row)
    values["type"] = AlarmType(values["type"])
    values["priority"] = Priority(values["priority"])
    values["state"] = AlarmState(values["state"])
    values["facts"] = json.loads(values["facts"])
    return Alarm(**values)


async def _save(conn: AsyncConnection, change: AlarmChange, now: datetime) -> None:
    alarm = change.after
    values = {
        "type": alarm.type.value, "priority": alarm.priority.value, "state": alarm.state.value,
        "active": alarm.active, "robot": alarm.robot, "bin": alarm.bin,
        "facts": json.dumps(dict(alarm.facts), sort_keys=True), "raised_at": alarm.raised_at,
        "updated_at": alarm.updated_at, "acked_by": alarm.acked_by, "acked_at": alarm.acked_at,
        "shelved_by": alarm.shelved_by, "shelved_reason": alarm.shelved_reason,
        "shelved_until": alarm.shelved_until, "seq": alarm.seq,
    }
    if change.before is None:
        await conn.execute(sa.insert(alarms).values(id=alarm.id, **values))
    else:
        await conn.execute(sa.update(alarms).where(alarms.c.id == alarm.id).values(**values))
    before = change.before.state if change.before is not None else None
    if before is not alarm.state:
        await conn.execute(sa.insert(alarm_events).values(
            alarm_id=alarm.id, from_state=before, to_state=alarm.state, who=change.who,
            reason=change.reason, at=now))
        await record(conn, now, change.who, f"alarm {alarm.state}", f"alarm:{alarm.id}",
                     {"state": before} if before else None,
                     {"state": alarm.state, "reason": change.reason})
