"""After the fill, in the store: the label scanned onto its vial, the witnessed count, the
pharmacist's verification or rejection, the release. Each step is checked by the workflow's
rules (``domain/workflow.py``) against what the store recorded, in the transaction that
records it."""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from controller.clock import Clock
from controller.domain.orders import FillOutcome, OrderState
from controller.domain.weight import WeightCheck, WeightVerdict
from controller.domain.workflow import Action, Dossier, Person, Step, WorkflowError, advance
from controller.store.audit_records import record
from controller.store.schema import (
    bin_movements,
    fills,
    labels,
    order_events,
    orders,
    releases,
    set_aside,
    witnessed_counts,
)
from controller.store.stock import (
    DISPOSITIONS,
    SUPERVISOR,
    add_movement,
    bin_by_id,
    inserted_id,
    return_to_bin,
    take_from_bin,
)

FILL_CODE_PREFIX = "F"


def fill_code(fill_id: int) -> str:
    """What a label's barcode holds: the fill's id (``F00000123``)."""
    return f"{FILL_CODE_PREFIX}{fill_id:08d}"


def parse_fill_code(scanned: str) -> int:
    """The fill id in a scanned label barcode, or WorkflowError."""
    text = scanned.strip()
    digits = text.removeprefix(FILL_CODE_PREFIX)
    if not text.startswith(FILL_CODE_PREFIX) or not digits.isascii() or not digits.isdigit():
        raise WorkflowError(f"scanned {scanned!r} is not an rxfill label (expected F and 8 "
                            f"digits, e.g. {fill_code(123)})")
    return int(digits)


DESTINATIONS = ("pickup", "shipping")


@dataclass(frozen=True, slots=True)
class LabelRecord:
    """One label sent (or refused) for a vial."""

    id: int
    fill_id: int
    copy: int
    """1 for the label; 2, 3… for reprints."""
    who: str
    printer: str
    outcome: str
    """``printed``, or ``refused`` with the printer's reason."""
    reason: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class Release:
    """Where a released vial went."""

    order_id: int
    fill_id: int
    destination: str
    carrier: str | None
    tracking: str | None
    who: str
    at: datetime


class _Base(Protocol):
    _clock: Clock
    _write: asyncio.Lock
    _engine: AsyncEngine
    instance: str

    def _transaction(self) -> AbstractAsyncContextManager[AsyncConnection]: ...

    async def _move(self, conn: AsyncConnection, order_id: int, target: OrderState, who: str,
                    reason: str | None) -> None: ...


class VerificationRecords:
    """The verification station's half of the store (mixed into Store)."""

    async def label_scanned(self: _Base, order_id: int, scanned: str, person: Person, *,
                            schedule: str | None) -> OrderState:
        """The technician scanned the printed label at the order's filled vial: LABELED, but
        only when the label is that vial's (the order's last complete fill)."""
        async with self._transaction() as conn:
            fill_id = await _filled_vial(conn, order_id)
            scanned_id = parse_fill_code(scanned)
            if scanned_id != fill_id:
                raise WorkflowError(f"the label scanned is fill {scanned_id}'s, but order "
                                    f"{order_id}'s vial is fill {fill_id}: wrong label, "
                                    f"nothing changed")
            return await _step(self, conn, order_id, Step(Action.LABEL, person), schedule,
                               reason=f"label {fill_code(fill_id)} scanned onto the vial")

    async def witness_count(self: _Base, order_id: int, count: int, person: Person, *,
                            schedule: str | None) -> None:
        """A pharmacist witnessed the second count of a schedule II vial; it must agree."""
        async with self._transaction() as conn:
            fill_id = await _filled_vial(conn, order_id)
            counted = await conn.scalar(sa.select(fills.c.counted).where(fills.c.id == fill_id))
            dossier = await _dossier(conn, order_id, schedule)
            advance(dossier, Step(Action.WITNESS, person))  # the rules, or WorkflowError
            if count != counted:
                raise WorkflowError(f"the second count ({count}) disagrees with the fill's "
                                    f"({counted}): count again, or reject the vial")
            now = self._clock.now()
            await conn.execute(sa.insert(witnessed_counts).values(
                fill_id=fill_id, who=person.name, count=count, at=now))
            await record(conn, now, person.name, "count witnessed", f"order:{order_id}",
                         None, {"fill": fill_id, "count": count})

    async def verify_order(self: _Base, order_id: int, person: Person, *,
                           schedule: str | None) -> OrderState:
        """The pharmacist approves the vial: VERIFIED."""
        async with self._transaction() as conn:
            return await _step(self, conn, order_id, Step(Action.VERIFY, person), schedule,
                               reason="verified")

    async def reject_order(self: _Base, order_id: int, person: Person, reason: str, *,
                           fill_again: bool, tablets: str, schedule: str | None) -> OrderState:
        """The pharmacist refuses the vial: QUEUED to fill it again, or CANCELLED. Its
        tablets are recorded as ``returned`` to their bin or ``wasted``."""
        if tablets not in DISPOSITIONS:
            raise WorkflowError(f"the rejected vial's tablets: {tablets!r}; expected one of "
                                f"{', '.join(DISPOSITIONS)}")
        now = self._clock.now()
        async with self._transaction() as conn:
            fill_id = await _last_filled(conn, order_id)
            state = await _step(self, conn, order_id, Step(Action.REJECT, person, reason,
                                                           fill_again), schedule, reason=reason)
            if fill_id is not None:
                fill = (await conn.execute(sa.select(fills.c.bin_id, fills.c.counted).where(
                    fills.c.id == fill_id))).one()
                if tablets == "returned":
                    await return_to_bin(conn, fill_id, fill.counted, who=person.name,
                                        reason=f"rejected vial: {reason}", at=now)
                await conn.execute(sa.insert(set_aside).values(
                    fill_id=fill_id, bin_id=fill.bin_id, count=fill.counted, at=now,
                    disposition=tablets, disposed_by=person.name, disposed_at=now))
                await record(conn, now, person.name, f"rejected vial {tablets}",
                             f"order:{order_id}", None, {"fill": fill_id,
                                                         "count": fill.counted})
            return state

    async def release_order(self: _Base, order_id: int, person: Person, destination: str, *,
                            schedule: str | None, carrier: str | None = None,
                            tracking: str | None = None) -> OrderState:
        """To the pickup bin, or to shipping with carrier and tracking number."""
        carrier, tracking = (carrier or "").strip() or None, (tracking or "").strip() or None
        if destination not in DESTINATIONS:
            raise WorkflowError(f"release to {destination!r}: expected pickup or shipping")
        if destination == "shipping" and not (carrier and tracking):
            raise WorkflowError("a vial released to shipping needs its carrier and tracking "
                                "number")
        if destination == "pickup" and (carrier or tracking):
            raise WorkflowError("a vial for the pickup bin has no carrier or tracking number")
        now = self._clock.now()
        async with self._transaction() as conn:
            fulfilment = await conn.scalar(sa.select(orders.c.fulfilment).where(
                orders.c.id == order_id))
            wanted = "shipping" if fulfilment == "ship" else "pickup"
            if fulfilment is not None and destination != wanted:
                raise WorkflowError(f"order {order_id} is for {fulfilment}; release it to "
                                    f"{wanted}")
            fill_id = await _filled_vial(conn, order_id)
            where = destination + (f" by {carrier}, tracking {tracking}" if carrier else "")
            state = await _step(self, conn, order_id, Step(Action.RELEASE, person), schedule,
                                reason=f"released to {where}")
            await conn.execute(sa.insert(releases).values(
                order_id=order_id, fill_id=fill_id, destination=destination, carrier=carrier,
                tracking=tracking, who=person.name, at=now))
            return state

    async def release(self: _Base, order_id: int) -> Release | None:
        """Where a released order's vial went, or None."""
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(releases).where(
                releases.c.order_id == order_id))).mappings().first()
        return None if row is None else Release(**dict(row))

    async def hand_fill(self: _Base, order_id: int, bin_id: int | None, count: int,
                        check: WeightCheck, person: Person, *, schedule: str | None,
                        found: int | None = None) -> OrderState:
        """A person counted an order in exception by hand; its weight must agree with the
        count. EXCEPTION → FILLED.

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
        now = self._clock.now()
        async with self._transaction() as conn:
            order = (await conn.execute(sa.select(orders.c.ndc, orders.c.quantity).where(
                orders.c.id == order_id))).first()
            if order is None:
                raise WorkflowError(f"no order {order_id}")
            if count != order.quantity:
                raise WorkflowError(f"the order asks for {order.quantity}; {count} were "
                                    f"counted")
            vial = await _unverified_vial(conn, order_id)
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
                raise WorkflowError(f"order {order_id} left no vial to recount: count the "
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
            state = await _step(self, conn, order_id, Step(Action.HAND_COUNT, person),
                                schedule, reason=f"counted by hand by {person.name}: {count}, "
                                                 f"weight {check.verdict}")
            result = await conn.execute(sa.insert(fills).values(
                order_id=order_id, bin_id=bin_id, quantity=count, state="ended",
                outcome=FillOutcome.FILLED, counted=count, weight_mg=round(check.measured_mg),
                expected_mg=check.expected_mg, tolerance_mg=check.tolerance_mg,
                verdict=check.verdict, detail=f"counted by hand by {person.name}",
                started_at=now, ended_at=now, counted_by=person.name))
            fill_id = inserted_id(result)
            await conn.execute(sa.update(fills).where(fills.c.id == fill_id).values(
                job=f"{self.instance}-hand-{fill_id}"))
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

    async def retry_order(self: _Base, order_id: int, person: Person, *,
                          schedule: str | None) -> OrderState:
        """A person sends an order in exception to the robots again."""
        async with self._transaction() as conn:
            await _set_aside_unverified(conn, order_id, self._clock.now())
            return await _step(self, conn, order_id, Step(Action.RETRY, person), schedule,
                               reason=f"retried by {person.name}")

    async def cancel_order(self: _Base, order_id: int, person: Person, reason: str, *,
                           schedule: str | None) -> OrderState:
        """Give up an order that has nothing in a vial yet (received, queued, in exception)."""
        async with self._transaction() as conn:
            await _set_aside_unverified(conn, order_id, self._clock.now())
            return await _step(self, conn, order_id, Step(Action.CANCEL, person, reason),
                               schedule, reason=reason)

    async def label_sent(self: _Base, fill_id: int, *, who: str, printer: str, outcome: str,
                         reason: str | None) -> LabelRecord:
        """Record a label sent to (or refused by) a printer; reprints are counted copies."""
        now = self._clock.now()
        async with self._transaction() as conn:
            copies = await conn.scalar(sa.select(sa.func.count()).select_from(labels).where(
                labels.c.fill_id == fill_id, labels.c.outcome == "printed"))
            copy = int(copies or 0) + 1
            result = await conn.execute(sa.insert(labels).values(
                fill_id=fill_id, copy=copy, who=who, printer=printer, outcome=outcome,
                reason=reason, at=now))
            await record(conn, now, who, "label " + ("reprinted" if copy > 1 and
                                                     outcome == "printed" else outcome),
                         f"fill:{fill_id}", None, {"copy": copy, "printer": printer,
                                                   "reason": reason})
            row = (await conn.execute(sa.select(labels).where(
                labels.c.id == inserted_id(result)))).mappings().one()
        return LabelRecord(**dict(row))

    async def labels_for(self: _Base, fill_id: int) -> list[LabelRecord]:
        """Every label sent for a vial, oldest first."""
        async with self._engine.connect() as conn:
            rows = (await conn.execute(sa.select(labels).where(labels.c.fill_id == fill_id)
                                       .order_by(labels.c.id))).mappings().all()
        return [LabelRecord(**dict(row)) for row in rows]


async def _step(store: _Base, conn: AsyncConnection, order_id: int, step: Step,
                schedule: str | None, *, reason: str) -> OrderState:
    after = advance(await _dossier(conn, order_id, schedule), step)
    await store._move(conn, order_id, after.state, step.person.name, reason)
    return after.state


@dataclass(frozen=True, slots=True)
class _Vial:
    id: int
    bin_id: int
    counted: int
    outcome: str


async def _unverified_vial(conn: AsyncConnection, order_id: int) -> _Vial | None:
    """The whole vial the order's last fill left for a person to count, if it did."""
    row = (await conn.execute(sa.select(fills.c.id, fills.c.bin_id, fills.c.counted,
                                        fills.c.outcome).where(fills.c.order_id == order_id)
                              .order_by(fills.c.id.desc()).limit(1))).first()
    if row is None or row.outcome not in (FillOutcome.WEIGHT_OFF, FillOutcome.COUNT_BY_HAND):
        return None
    if await conn.scalar(sa.select(set_aside.c.id).where(set_aside.c.fill_id == row.id)):
        return None  # set aside at a retry or cancellation: no longer the order's vial
    return _Vial(row.id, row.bin_id, row.counted or 0, row.outcome)


async def _set_aside_unverified(conn: AsyncConnection, order_id: int, at: datetime) -> None:
    """An order retried or cancelled with a robot's unconfirmed vial waiting: that vial is
    set aside, for a person to record as returned to its bin or wasted (rxfill vials)."""
    vial = await _unverified_vial(conn, order_id)
    if vial is not None and vial.counted:
        await conn.execute(sa.insert(set_aside).values(
            fill_id=vial.id, bin_id=vial.bin_id, count=vial.counted, at=at))


async def _recount(conn: AsyncConnection, vial: _Vial, found: int, fill_id: int, who: str,
                   at: datetime) -> None:
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


async def _last_filled(conn: AsyncConnection, order_id: int) -> int | None:
    """The order's latest complete fill (its vial), or None."""
    fill_id = await conn.scalar(sa.select(sa.func.max(fills.c.id)).where(
        fills.c.order_id == order_id, fills.c.outcome == FillOutcome.FILLED))
    return None if fill_id is None else int(fill_id)


async def _filled_vial(conn: AsyncConnection, order_id: int) -> int:
    fill_id = await _last_filled(conn, order_id)
    if fill_id is None:
        raise WorkflowError(f"order {order_id} has no filled vial")
    return fill_id


async def _dossier(conn: AsyncConnection, order_id: int, schedule: str | None) -> Dossier:
    """What the workflow needs, read from the order's events since its last fill began."""
    state = await conn.scalar(sa.select(orders.c.state).where(orders.c.id == order_id))
    if state is None:
        raise WorkflowError(f"no order {order_id}")
    events = (await conn.execute(sa.select(order_events.c.to_state, order_events.c.who).where(
        order_events.c.order_id == order_id).order_by(order_events.c.id))).all()
    since = max((i for i, (to, _) in enumerate(events) if to == OrderState.DISPENSING),
                default=0)
    recent = events[since:]
    handled = frozenset(who for to, who in recent
                        if to in (OrderState.FILLED, OrderState.LABELED) and who != SUPERVISOR)
    verified = next((who for to, who in reversed(recent) if to == OrderState.VERIFIED), None)
    witness = None
    fill_id = await _last_filled(conn, order_id)
    if fill_id is not None:
        witness = await conn.scalar(sa.select(witnessed_counts.c.who).where(
            witnessed_counts.c.fill_id == fill_id).limit(1))
    return Dossier(OrderState(state), schedule, handled, verified, witness)
