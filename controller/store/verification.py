"""After the fill, in the store: the label scanned onto its vial, the witnessed count, the
pharmacist's verification or rejection, the release, and the labels printed.

Every step after the fill acts on one vial (a fill), named by its label: a label of a vial
that is no longer its order's is refused with why (``vials.vial_of``). Each step is checked
by the workflow's rules (``domain/workflow.py``) against what the store recorded of the
order and that vial (its schedule at intake, who counted, labelled, verified and witnessed
it), in the transaction that records it; no caller passes any of those facts in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from controller.domain.orders import OrderState
from controller.domain.roles import Person, WorkflowError
from controller.domain.stock import expired_lots
from controller.domain.workflow import Action, Dossier, Step, advance
from controller.store.audit_records import record
from controller.store.records import (
    FILL_CODE_PREFIX,
    FillRecord,
    OrderRecord,
    fill_code,
)
from controller.store.schema import bin_movements, fills, labels, releases, witnessed_counts
from controller.store.stock import inserted_id
from controller.store.vials import current_vial, order_of, set_vial_aside, transition, vial_of

if TYPE_CHECKING:
    from controller.store.store import Store


class NotALabel(WorkflowError):
    """What was scanned is not an rxfill vial label at all."""


def parse_fill_code(scanned: str) -> int:
    """The fill id in a scanned label barcode (F and exactly 8 digits), or NotALabel."""
    text = scanned.strip()
    digits = text.removeprefix(FILL_CODE_PREFIX)
    if (not text.startswith(FILL_CODE_PREFIX) or len(digits) != 8 or not digits.isascii()
            or not digits.isdigit()):
        shown = scanned if len(scanned) <= 40 else scanned[:40] + "…"
        raise NotALabel(f"scanned {shown!r} is not an rxfill label (expected F and 8 digits, "
                        f"e.g. {fill_code(123)})")
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




async def dossier(conn: AsyncConnection, order: OrderRecord,
                  vial: FillRecord | None) -> Dossier:
    """What the workflow needs, from the store's own records of the order and its vial."""
    if vial is None:
        return Dossier(order.state, order.schedule)
    witness = await conn.scalar(sa.select(witnessed_counts.c.who).where(
        witnessed_counts.c.fill_id == vial.id).limit(1))
    return Dossier(order.state, order.schedule, counted_by=vial.counted_by,
                   labelled_by=vial.labelled_by, verified_by=vial.verified_by,
                   witnessed_by=witness)


async def take_step(db: Store, conn: AsyncConnection, order: OrderRecord,
                    vial: FillRecord | None, step: Step, *, reason: str) -> OrderState:
    """Check ``step`` by the workflow's rules and record the order's move, or WorkflowError."""
    after = advance(await dossier(conn, order, vial), step)
    await transition(conn, order.id, after.state, step.person.name, reason, db.clock.now())
    return after.state


async def lots_of(conn: AsyncConnection, fill_id: int) -> list[tuple[str, date]]:
    """The lots (and their expiry) a vial's tablets came from."""
    query = sa.select(bin_movements.c.lot, bin_movements.c.expiry).where(
        bin_movements.c.fill_id == fill_id, bin_movements.c.kind == "fill").distinct()
    return [(lot, expiry) for lot, expiry in (await conn.execute(query)).all()]


def _lots(expired: list[tuple[str, date]]) -> str:
    return ("lot(s) past their expiry ("
            + ", ".join(f"{lot} expired {expiry:%Y-%m-%d}" for lot, expiry in expired) + ")")


async def _unexpired(conn: AsyncConnection, vial: FillRecord, today: date) -> None:
    """WorkflowError when a lot in the vial expired since it was filled: it goes to no one."""
    if expired := expired_lots(await lots_of(conn, vial.id), today):
        raise WorkflowError(f"{vial.code} holds {_lots(expired)}: it may not be verified or "
                            f"released; reject it")


class VerificationRecords:
    """The verification station's half of the store (mixed into Store)."""

    def __init__(self, db: Store) -> None:
        self._db = db

    async def label_scanned(self, order_id: int, scanned: str,
                            person: Person) -> OrderState:
        """The technician scanned the printed label at the order's filled vial: LABELED, but
        only when the label is that vial's."""
        scanned_id = parse_fill_code(scanned)
        async with self._db.transaction() as conn:
            order = await order_of(conn, order_id)
            vial = await current_vial(conn, order_id)
            if vial is None:
                raise WorkflowError(f"order {order_id} has no filled vial")
            if scanned_id != vial.id:
                raise WorkflowError(f"the label scanned is {fill_code(scanned_id)}, but order "
                                    f"{order_id}'s vial is {vial.code}: wrong label, nothing "
                                    f"changed")
            state = await take_step(self._db, conn, order, vial, Step(Action.LABEL, person),
                                    reason=f"label {vial.code} scanned onto the vial")
            await conn.execute(sa.update(fills).where(fills.c.id == vial.id).values(
                labelled_by=person.name, labelled_at=self._db.clock.now()))
            return state

    async def witness_count(self, fill_id: int, count: int, person: Person) -> None:
        """A pharmacist witnessed the second count of a schedule II vial; it must agree."""
        async with self._db.transaction() as conn:
            vial, order = await vial_of(conn, fill_id)
            advance(await dossier(conn, order, vial), Step(Action.WITNESS, person))
            if count != vial.counted:
                raise WorkflowError(f"the second count ({count}) disagrees with the fill's "
                                    f"({vial.counted}): count again, or reject the vial")
            now = self._db.clock.now()
            await conn.execute(sa.insert(witnessed_counts).values(
                fill_id=fill_id, who=person.name, count=count, at=now))
            await record(conn, now, person.name, "count witnessed", f"order:{order.id}",
                         None, {"fill": fill_id, "count": count})

    async def verify_vial(self, fill_id: int, person: Person) -> OrderState:
        """The pharmacist approves the vial: VERIFIED (never one holding an expired lot)."""
        async with self._db.transaction() as conn:
            vial, order = await vial_of(conn, fill_id)
            await _unexpired(conn, vial, self._db.clock.now().date())
            state = await take_step(self._db, conn, order, vial, Step(Action.VERIFY, person),
                                    reason=f"{vial.code} verified")
            await conn.execute(sa.update(fills).where(fills.c.id == fill_id).values(
                verified_by=person.name, verified_at=self._db.clock.now()))
            return state

    async def reject_vial(self, fill_id: int, person: Person, reason: str, *,
                          fill_again: bool, tablets: str) -> OrderState:
        """The pharmacist refuses the vial: QUEUED to fill it again, or CANCELLED. Its
        tablets are recorded as ``returned`` to their bin or ``wasted``."""
        async with self._db.transaction() as conn:
            vial, order = await vial_of(conn, fill_id)
            state = await take_step(
                self._db, conn, order, vial,
                Step(Action.REJECT, person, reason, fill_again, tablets=tablets),
                reason=f"{vial.code} rejected: {reason}")
            await set_vial_aside(conn, vial, vial.counted or 0, cause="rejected",
                                 who=person.name, at=self._db.clock.now(), disposition=tablets,
                                 reason=reason)
            return state

    async def release_vial(self, fill_id: int, person: Person, destination: str, *,
                           carrier: str | None = None,
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
        now = self._db.clock.now()
        async with self._db.transaction() as conn:
            vial, order = await vial_of(conn, fill_id)
            await _unexpired(conn, vial, now.date())
            wanted = "shipping" if order.fulfilment == "ship" else "pickup"
            if destination != wanted:
                raise WorkflowError(f"order {order.id} is for {order.fulfilment}; release it "
                                    f"to {wanted}")
            where = destination + (f" by {carrier}, tracking {tracking}" if carrier else "")
            state = await take_step(self._db, conn, order, vial, Step(Action.RELEASE, person),
                                    reason=f"{vial.code} released to {where}")
            await conn.execute(sa.insert(releases).values(
                order_id=order.id, fill_id=fill_id, destination=destination, carrier=carrier,
                tracking=tracking, who=person.name, at=now))
            return state

    async def release(self, order_id: int) -> Release | None:
        """Where a released order's vial went, or None."""
        async with self._db.engine.connect() as conn:
            row = (await conn.execute(sa.select(releases).where(
                releases.c.order_id == order_id))).mappings().first()
        return None if row is None else Release(**dict(row))

    async def vial_to_label(self, fill_id: int) -> tuple[FillRecord, OrderRecord]:
        """The vial whose label is about to print, with its order: it must be its order's
        filled vial, and no lot in it may have expired (WorkflowError says why)."""
        async with self._db.engine.connect() as conn:
            vial, order = await vial_of(conn, fill_id)
            if order.state is not OrderState.FILLED:
                raise WorkflowError(f"order {order.id} is {order.state}: a label is printed for "
                                    f"a filled vial before it is scanned onto it")
            lots = await lots_of(conn, fill_id)
        if expired := expired_lots(lots, self._db.clock.now().date()):
            raise WorkflowError(f"{vial.code} holds {_lots(expired)}: no label is printed; a "
                                f"pharmacist rejects the vial")
        return vial, order

    async def label_sent(self, fill_id: int, *, who: str, printer: str, outcome: str,
                         reason: str | None) -> LabelRecord:
        """Record a label sent to (or refused by) a printer; reprints are counted copies."""
        now = self._db.clock.now()
        async with self._db.transaction() as conn:
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

    async def labels_for(self, fill_id: int) -> list[LabelRecord]:
        """Every label sent for a vial, oldest first."""
        async with self._db.engine.connect() as conn:
            rows = (await conn.execute(sa.select(labels).where(labels.c.fill_id == fill_id)
                                       .order_by(labels.c.id))).mappings().all()
        return [LabelRecord(**dict(row)) for row in rows]
