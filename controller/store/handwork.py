"""A person's hands on an order, in the store: a count by hand, a retry, a cancellation.

Each is checked by the workflow's rules against the store's records of the order and its
vial, in the transaction that records it. A cancellation of an order with a filled vial is a
pharmacist's, and says what became of the vial's tablets, like a rejection.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from controller.domain.orders import FillOutcome, OrderState
from controller.domain.roles import Person, WorkflowError
from controller.domain.stock import expired_lots, take
from controller.domain.weight import WeightCheck, WeightVerdict
from controller.domain.workflow import VIAL_STATES, Action, Step
from controller.store.records import FillRecord, OrderRecord, fill_query, fill_record
from controller.store.schema import bin_movements, fills, set_aside
from controller.store.stock import (
    BinRecord,
    add_movement,
    bin_by_id,
    inserted_id,
    return_to_bin,
    take_from_bin,
)
from controller.store.verification import lots_of, take_step
from controller.store.vials import current_vial, order_of, set_vial_aside

if TYPE_CHECKING:
    from controller.store.store import Store


class HandworkRecords:
    """Hand counts, retries and cancellations (mixed into Store)."""

    def __init__(self, db: Store) -> None:
        self._db = db

    async def hand_fill(self, order_id: int, bin_id: int | None, count: int,
                        check: WeightCheck, person: Person, *,
                        found: int | None = None) -> OrderState:
        """A person counted an order in exception by hand; its weight must agree with the
        count, and no tablet may come from an expired lot. EXCEPTION → FILLED.

        When the robot's last fill left a whole vial the scale could not confirm
        (``weight_off``, ``count_by_hand``), the person counts *that vial*: ``found``
        is what was in it, the robot's miscount goes back on its bin's record, and only
        the difference to ``count`` comes from (or goes back to) the bin. Otherwise the
        person counts ``count`` tablets from ``bin_id``.
        """
        if check.count != count:
            raise WorkflowError(f"the weight was checked for {check.count}, not {count}")
        if check.verdict is WeightVerdict.DISAGREES:
            raise WorkflowError(
                f"the vial weighs {check.measured_mg:.0f} mg; {count} tablets should weigh "
                f"{check.expected_mg:.0f} ± {check.tolerance_mg:.0f} mg: count again")
        now = self._db.clock.now()
        async with self._db.transaction() as conn:
            order = await order_of(conn, order_id)
            if count != order.quantity:
                raise WorkflowError(f"the order asks for {order.quantity}; {count} were "
                                    f"counted")
            vial, source, in_vial = await _counted_from(conn, order, bin_id, count, found)
            drawn = [(lot.lot, lot.expiry) for lot, _ in take(source.lots, count - in_vial)
                     ] if count > in_vial else []
            if vial is not None:
                drawn += await lots_of(conn, vial.id)
            if expired := expired_lots(drawn, now.date()):
                raise WorkflowError(
                    "the count would hold expired stock ("
                    + ", ".join(f"lot {lot} expired {expiry:%Y-%m-%d}" for lot, expiry in expired)
                    + f"): unload {source.robot} bin {source.bin}'s expired lot and count from "
                      f"unexpired stock")
            state = await take_step(self._db, conn, order, None, Step(Action.HAND_COUNT, person),
                                    reason=f"counted by hand by {person.name}: {count}, "
                                           f"weight {check.verdict}")
            result = await conn.execute(sa.insert(fills).values(
                order_id=order_id, bin_id=source.id, quantity=count, state="ended",
                outcome=FillOutcome.FILLED, counted=count, weight_mg=round(check.measured_mg),
                expected_mg=check.expected_mg, tolerance_mg=check.tolerance_mg,
                verdict=check.verdict, detail=f"counted by hand by {person.name}",
                started_at=now, ended_at=now, counted_by=person.name))
            fill_id = inserted_id(result)
            await conn.execute(sa.update(fills).where(fills.c.id == fill_id).values(
                job=f"{self._db.instance}-hand-{fill_id}"))
            if vial is not None:
                await _recount(conn, vial, in_vial, fill_id, person.name, now)
            if count > in_vial:
                await take_from_bin(conn, source, count - in_vial, kind="fill",
                                    who=person.name, reason="counted by hand", at=now,
                                    fill_id=fill_id)
            elif count < in_vial:
                await return_to_bin(conn, fill_id, in_vial - count, who=person.name,
                                    reason="more in the vial than ordered", at=now)
            return state

    async def retry_order(self, order_id: int, person: Person) -> OrderState:
        """A person sends an order in exception to the robots again."""
        async with self._db.transaction() as conn:
            order = await order_of(conn, order_id)
            state = await take_step(self._db, conn, order, None, Step(Action.RETRY, person),
                                    reason=f"retried by {person.name}")
            await _set_aside_unverified(conn, order_id, self._db.clock.now(), person.name)
            return state

    async def cancel_order(self, order_id: int, person: Person, reason: str, *,
                           tablets: str | None = None) -> OrderState:
        """Give an order up. Once it has a filled vial (filled, labelled, verified) only a
        pharmacist may, saying what became of its tablets (``returned`` or ``wasted``)."""
        async with self._db.transaction() as conn:
            order = await order_of(conn, order_id)
            vial = await current_vial(conn, order_id) if order.state in VIAL_STATES else None
            if vial is None and tablets is not None:
                raise WorkflowError(f"order {order_id} is {order.state} and has no filled vial:"
                                    f" there are no tablets to return or waste")
            state = await take_step(self._db, conn, order, vial,
                                    Step(Action.CANCEL, person, reason, tablets=tablets),
                                    reason=reason)
            now = self._db.clock.now()
            if vial is not None:
                await set_vial_aside(conn, vial, vial.counted or 0, cause="cancelled",
                                     who=person.name, at=now, disposition=tablets, reason=reason)
            else:
                await _set_aside_unverified(conn, order_id, now, person.name)
            return state


async def _unverified_vial(conn: AsyncConnection, order_id: int) -> FillRecord | None:
    """The whole vial the order's last fill left for a person to count, if it did."""
    row = (await conn.execute(fill_query().where(fills.c.order_id == order_id)
                              .order_by(fills.c.id.desc()).limit(1))).mappings().first()
    if row is None or row["outcome"] not in (FillOutcome.WEIGHT_OFF, FillOutcome.COUNT_BY_HAND):
        return None
    if await conn.scalar(sa.select(set_aside.c.id).where(set_aside.c.fill_id == row["id"])):
        return None  # set aside at a retry or cancellation: no longer the order's vial
    return fill_record(row)


async def _set_aside_unverified(conn: AsyncConnection, order_id: int, at: datetime,
                                who: str) -> None:
    """An order retried or cancelled with a robot's unconfirmed vial waiting: that vial is
    set aside, for a person to record as returned to its bin or wasted (rxfill vials)."""
    vial = await _unverified_vial(conn, order_id)
    if vial is not None and vial.counted:
        await set_vial_aside(conn, vial, vial.counted, cause="unconfirmed", who=who, at=at,
                             reason="its order was retried or cancelled")


async def _recount(conn: AsyncConnection, vial: FillRecord, found: int, fill_id: int,
                   who: str, at: datetime) -> None:
    """The robot's vial holds ``found``: its tablets become the hand fill's, lot by lot as
    the robot took them; what the robot miscounted is put right on the last lot it took."""
    taken = (await conn.execute(sa.select(bin_movements.c.lot, bin_movements.c.expiry,
                                          bin_movements.c.quantity).where(
        bin_movements.c.fill_id == vial.id, bin_movements.c.kind == "fill")
        .order_by(bin_movements.c.id))).all()
    if not taken:
        raise WorkflowError(f"fill {vial.id} took nothing off its bin: nothing to recount")
    left = found
    for number, (lot, expiry, quantity) in enumerate(taken):
        # Off the robot's fill, back on the bin's record ...
        await add_movement(conn, dict(
            bin_id=vial.bin_id, kind="return", quantity=-quantity, fill_id=vial.id, who=who,
            reason=f"its vial recounted by hand as fill {fill_id}", at=at, lot=lot,
            expiry=expiry))
        # ... and onto the hand fill, as many as were found (the last lot takes the rest).
        mine = left if number == len(taken) - 1 else min(left, -quantity)
        left -= mine
        if mine:
            await add_movement(conn, dict(
                bin_id=vial.bin_id, kind="fill", quantity=-mine, fill_id=fill_id, who=who,
                reason=f"the vial of fill {vial.id}: {found} found by hand (the robot "
                       f"counted {vial.counted})", at=at, lot=lot, expiry=expiry))


async def _counted_from(conn: AsyncConnection, order: OrderRecord, bin_id: int | None,
                        count: int, found: int | None
                        ) -> tuple[FillRecord | None, BinRecord, int]:
    """Where a hand count's tablets came from: the robot's unconfirmed vial (recounted:
    ``found`` in it) or a bin; the bin; and how many were already in the vial."""
    vial = await _unverified_vial(conn, order.id)
    if vial is not None:
        if found is None:
            raise WorkflowError(
                f"fill {vial.id} left a vial the scale could not confirm "
                f"({vial.outcome}): count the tablets in it and say how many you "
                f"found")
        if bin_id is not None and bin_id != vial.bin_id:
            raise WorkflowError(f"the vial of fill {vial.id} came from another bin; "
                                f"its tablets are recounted, not taken anew")
        bin_id = vial.bin_id
    elif found is not None:
        raise WorkflowError(f"order {order.id} left no vial to recount: count the "
                            f"tablets from a bin")
    if bin_id is None:
        raise WorkflowError("say which bin the tablets were counted from")
    source = await bin_by_id(conn, bin_id)
    if source.ndc != order.ndc:
        raise WorkflowError(f"{source.robot} bin {source.bin} holds {source.ndc}, not "
                            f"the order's {order.ndc}")
    in_vial = found or 0
    if source.on_hand < count - in_vial:
        raise WorkflowError(f"{source.robot} bin {source.bin} holds "
                            f"{source.on_hand}, fewer than {count - in_vial}")
    return vial, source, in_vial
