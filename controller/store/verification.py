"""After the fill, in the store: the label scanned onto its vial, the witnessed count, the
pharmacist's verification or rejection, the release. Each step is checked by the workflow's
rules (``domain/workflow.py``) against what the store recorded, in the transaction that
records it."""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from controller.clock import Clock
from controller.domain.orders import FillOutcome, OrderState
from controller.domain.workflow import Action, Dossier, Person, Step, WorkflowError, advance
from controller.store.audit_records import record
from controller.store.schema import fills, order_events, orders, witnessed_counts
from controller.store.stock import SUPERVISOR

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


class _Base(Protocol):
    _clock: Clock
    _write: asyncio.Lock

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
                           fill_again: bool, schedule: str | None) -> OrderState:
        """The pharmacist refuses the vial: QUEUED to fill it again, or CANCELLED."""
        async with self._transaction() as conn:
            return await _step(self, conn, order_id, Step(Action.REJECT, person, reason,
                                                          fill_again), schedule, reason=reason)

    async def release_order(self: _Base, order_id: int, person: Person, to: str, *,
                            schedule: str | None) -> OrderState:
        """To the pickup bin, or to shipping (``to`` says which, with carrier and tracking)."""
        if not to.strip():
            raise WorkflowError("say where it goes: the pickup bin, or shipping with carrier "
                                "and tracking number")
        async with self._transaction() as conn:
            return await _step(self, conn, order_id, Step(Action.RELEASE, person), schedule,
                               reason=f"released to {to}")


async def _step(store: _Base, conn: AsyncConnection, order_id: int, step: Step,
                schedule: str | None, *, reason: str) -> OrderState:
    after = advance(await _dossier(conn, order_id, schedule), step)
    await store._move(conn, order_id, after.state, step.person.name, reason)
    return after.state


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
