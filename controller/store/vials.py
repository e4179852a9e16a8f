"""Vials in the store: which vial is its order's now, and vials set aside (a robot's partial,
an unconfirmed vial a person gave up, a rejected or cancelled vial) with what became of their
tablets."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from controller.domain.orders import FillOutcome, OrderState, check_transition
from controller.domain.roles import Duty, Person, require
from controller.domain.workflow import DISPOSITIONS, NotTheVial
from controller.store.audit_records import record
from controller.store.errors import StoreError
from controller.store.records import (
    FillRecord,
    OrderRecord,
    SetAsideVial,
    fill_code,
    fill_query,
    fill_record,
    order_record,
)
from controller.store.schema import fills, order_events, orders, set_aside
from controller.store.stock import return_to_bin

if TYPE_CHECKING:
    from controller.store.store import Store

CAUSES = ("partial", "unconfirmed", "rejected", "cancelled")


async def set_vial_aside(conn: AsyncConnection, fill: FillRecord, count: int, *, cause: str,
                         who: str, at: datetime, disposition: str | None = None,
                         reason: str | None = None) -> None:
    """A vial is no longer its order's: recorded, audited, and (with ``disposition``) what
    became of its tablets, which go back to their lots when ``returned``."""
    if cause not in CAUSES:
        raise ValueError(f"cause {cause!r}: expected one of {', '.join(CAUSES)}")
    if disposition is not None and disposition not in DISPOSITIONS:
        raise ValueError(f"disposition {disposition!r}: expected one of "
                         f"{', '.join(DISPOSITIONS)}")
    if disposition == "returned" and count:
        await return_to_bin(conn, fill.id, count, who=who,
                            reason=f"{cause} vial {fill_code(fill.id)}: {reason or cause}", at=at)
    decided = disposition is not None
    await conn.execute(sa.insert(set_aside).values(
        fill_id=fill.id, bin_id=fill.bin_id, count=count, at=at, cause=cause,
        disposition=disposition, disposed_by=who if decided else None,
        disposed_at=at if decided else None))
    await record(conn, at, who, f"{cause} vial " + (disposition or "set aside"),
                 f"fill:{fill.id}", None, {"order": fill.order_id, "count": count,
                                           "cause": cause, "disposition": disposition,
                                           "reason": reason})


async def current_vial(conn: AsyncConnection, order_id: int) -> FillRecord | None:
    """The order's vial now: its last complete fill, unless that was set aside."""
    row = (await conn.execute(fill_query().where(
        fills.c.order_id == order_id, fills.c.outcome == FillOutcome.FILLED,
        fills.c.id.not_in(sa.select(set_aside.c.fill_id))).order_by(fills.c.id.desc())
        .limit(1))).mappings().first()
    return None if row is None else fill_record(row)


async def transition(conn: AsyncConnection, order_id: int, target: OrderState, who: str,
                     reason: str | None, now: datetime) -> None:
    """Move an order to ``target`` in the caller's transaction, with its event and its line in
    the audit trail (TransitionError unless the order's states allow it)."""
    current = (await order_of(conn, order_id)).state
    check_transition(current, target)
    await conn.execute(sa.update(orders).where(orders.c.id == order_id).values(
        state=target, reason=reason, updated_at=now))
    await conn.execute(sa.insert(order_events).values(
        order_id=order_id, from_state=current, to_state=target, who=who, reason=reason, at=now))
    await record(conn, now, who, f"order {target}", f"order:{order_id}",
                 {"state": current}, {"state": target, "reason": reason})


async def order_of(conn: AsyncConnection, order_id: int) -> OrderRecord:
    """One order, in a transaction; StoreError if there is none."""
    row = (await conn.execute(sa.select(orders).where(orders.c.id == order_id))
           ).mappings().first()
    if row is None:
        raise StoreError(f"no order {order_id}")
    return order_record(row)


async def vial_of(conn: AsyncConnection, fill_id: int) -> tuple[FillRecord, OrderRecord]:
    """The vial a label names and its order; NotTheVial saying why when it is no longer
    that order's vial (StoreError when there is no such fill)."""
    row = (await conn.execute(fill_query().where(fills.c.id == fill_id))).mappings().first()
    if row is None:
        raise StoreError(f"no vial {fill_code(fill_id)}: no fill has that number")
    fill = fill_record(row)
    order = await order_of(conn, fill.order_id)
    code = fill_code(fill.id)
    if fill.outcome is not FillOutcome.FILLED:
        raise NotTheVial(f"{code} is not a filled vial: its fill ended "
                         f"{fill.outcome or 'not yet'} ({fill.detail or 'still dispensing'})")
    aside = (await conn.execute(sa.select(set_aside).where(set_aside.c.fill_id == fill.id))
             ).mappings().first()
    now = await current_vial(conn, order.id)
    instead = (f"; order {order.id}'s vial is {now.code}" if now is not None else
               f"; order {order.id} is {order.state} and has no vial now")
    if aside is not None:
        what = aside["cause"] or "set aside"
        fate = (f", its tablets {aside['disposition']} by {aside['disposed_by']}"
                if aside["disposition"] else "")
        raise NotTheVial(f"{code} was {what} on {aside['at']:%Y-%m-%d %H:%M}{fate}: it is no "
                         f"longer order {order.id}'s vial{instead}")
    if now is not None and now.id != fill.id:
        raise NotTheVial(f"{code} was superseded by {now.code}: it is no longer order "
                         f"{order.id}'s vial{instead}")
    if order.state not in (OrderState.FILLED, OrderState.LABELED, OrderState.VERIFIED,
                           OrderState.RELEASED):
        raise NotTheVial(f"order {order.id} is {order.state}: {code} is not a vial that goes "
                         f"on")
    return fill, order




class VialRecords:
    """Vials and vials set aside (mixed into Store)."""

    def __init__(self, db: Store) -> None:
        self._db = db

    async def vial(self, fill_id: int) -> tuple[FillRecord, OrderRecord]:
        """The vial a label names and its order, if it is still that order's vial (NotTheVial
        says why not; StoreError when there is no such fill)."""
        async with self._db.engine.connect() as conn:
            return await vial_of(conn, fill_id)

    async def order_vial(self, order_id: int) -> FillRecord | None:
        """The order's vial now (its last complete fill, unless set aside), or None."""
        async with self._db.engine.connect() as conn:
            return await current_vial(conn, order_id)

    async def set_aside_vials(self, *, pending_only: bool = False) -> list[SetAsideVial]:
        """Vials set aside, oldest first (only those awaiting a decision, if asked)."""
        query = sa.select(set_aside).order_by(set_aside.c.id)
        if pending_only:
            query = query.where(set_aside.c.disposition.is_(None))
        async with self._db.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [SetAsideVial(**dict(row)) for row in rows]

    async def dispose_vial(self, vial_id: int, disposition: str, *,
                           by: Person) -> SetAsideVial:
        """A person returned a set-aside vial's tablets to their bin, or wasted them."""
        require(by, Duty.DISPOSE_VIAL)
        who = by.name
        if disposition not in DISPOSITIONS:
            raise ValueError(f"disposition {disposition!r}: expected one of {DISPOSITIONS}")
        now = self._db.clock.now()
        async with self._db.transaction() as conn:
            row = (await conn.execute(sa.select(set_aside).where(set_aside.c.id == vial_id))
                   ).mappings().first()
            if row is None:
                raise StoreError(f"no set-aside vial {vial_id}")
            if row["disposition"] is not None:
                raise StoreError(f"set-aside vial {vial_id} was already {row['disposition']} "
                                 f"by {row['disposed_by']}")
            if disposition == "returned":
                await return_to_bin(conn, row["fill_id"], row["count"], who=who,
                                    reason=f"partial vial {vial_id} returned to stock", at=now)
            await conn.execute(sa.update(set_aside).where(set_aside.c.id == vial_id).values(
                disposition=disposition, disposed_by=who, disposed_at=now))
            await record(conn, now, who, f"partial vial {disposition}", f"vial:{vial_id}",
                         {"disposition": None}, {"disposition": disposition,
                                                 "count": row["count"]})
            row = (await conn.execute(sa.select(set_aside).where(set_aside.c.id == vial_id))
                   ).mappings().one()
        return SetAsideVial(**dict(row))
