"""Orders and their fills in the store: an order taken (once per prescription fill), moved by
the supervisor, a fill started and ended.

The rules that protect a patient are checked here, in the transaction that records the
change: one order per (prescription number, fill number); the drug's schedule recorded at
intake from the formulary; the supervisor moves an order only where no person's step is
needed; a fill starts (or resumes) only from a bin holding the order's NDC and no expired
lot, on a robot in service.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from controller.domain.fills import PARTIAL_OUTCOMES
from controller.domain.orders import (
    SUPERVISOR_MOVES,
    FillOutcome,
    Order,
    OrderState,
    TransitionError,
    check_transition,
)
from controller.domain.roles import WorkflowError
from controller.domain.stock import expired_lots
from controller.domain.text import text_problem
from controller.store.alarm_records import robots_out_of_service
from controller.store.audit_records import record
from controller.store.calibration import scale_out_of_span_why, uncalibrated_why
from controller.store.errors import StoreError
from controller.store.outbox import enqueue
from controller.store.records import (
    FillRecord,
    FillResult,
    OrderRecord,
    fill_query,
    fill_record,
    order_record,
)
from controller.store.schema import bins, fills, order_events, orders, store_info
from controller.store.stock import (
    SUPERVISOR,
    bin_by_id,
    inserted_id,
    take_from_bin,
)
from controller.store.verification import lots_of
from controller.store.vials import order_of, set_vial_aside, transition

if TYPE_CHECKING:
    from controller.store.store import Store

JOB_SPACE = 0xFFFF_FFFF
"""Numeric job ids (a vial filler's JOB_ID) run 1 … 2³² − 1."""


class FillRefused(StoreError):
    """A fill that must not start (or resume) from that bin on that robot, and why."""


class PrescriptionConflict(WorkflowError):
    """A prescription fill submitted again with other content than the order it already is."""


_SAME = ("patient_id", "patient_name", "patient_birth_date", "patient_address", "ndc",
         "quantity", "easy_open", "sig", "prescriber_name", "prescriber_npi", "prescriber_dea",
         "refills", "days_supply", "priority", "fulfilment", "written_on")
"""What a second submission of a prescription fill must repeat to be the same order."""




def _columns(order: Order) -> dict[str, Any]:
    prescriber = order.prescriber
    return {
        "rx_number": order.rx_number, "fill_number": order.fill_number,
        "patient_id": order.patient.id, "patient_name": order.patient.name,
        "patient_birth_date": order.patient.birth_date, "ndc": order.ndc,
        "quantity": order.quantity, "easy_open": order.easy_open,
        "patient_address": order.patient.address, "sig": order.sig,
        "prescriber_name": prescriber.name if prescriber else None,
        "prescriber_npi": prescriber.npi if prescriber else None,
        "prescriber_dea": prescriber.dea if prescriber else None,
        "refills": order.refills, "days_supply": order.days_supply,
        "priority": str(order.priority), "fulfilment": str(order.fulfilment),
        "written_on": order.written,
    }


_TEXT = ("rx_number", "patient_id", "patient_name", "patient_address", "sig",
         "prescriber_name")
"""The order's words that reach a label or a screen."""


class OrderRecords:
    """Orders and fills (mixed into Store)."""

    def __init__(self, db: Store) -> None:
        self._db = db

    async def receive_order(self, order: Order, who: str = SUPERVISOR, *,
                            then: OrderState | None = None,
                            reason: str | None = None) -> tuple[OrderRecord, bool]:
        """Take a prescription fill: (the order, True when new).

        A new order is recorded RECEIVED with its drug's schedule from the formulary, and
        moved on to ``then`` (QUEUED, REJECTED) in the same commit. The same
        (prescription number, fill number) submitted again is the same order: (it, False),
        nothing recorded; with other content it is a PrescriptionConflict.
        """
        if then is not None and (OrderState.RECEIVED, then) not in SUPERVISOR_MOVES:
            raise StoreError(f"a new order moves on to queued or rejected, not {then}")
        if self._db.formulary is None:
            raise StoreError("this store was opened without the formulary: it cannot take "
                             "orders (the drug's schedule is recorded from it)")
        drug = self._db.formulary.get(order.ndc)
        values = _columns(order)
        # What a label prints is plain text: no door round the intake's check stores otherwise.
        bad = [f"{key} {why}" for key in _TEXT if (why := text_problem(values[key] or ""))]
        if bad:
            raise StoreError(f"order {order.rx_number} refused: {'; '.join(bad)}; nothing "
                             f"was stored")
        now = self._db.clock.now()
        async with self._db.transaction() as conn:
            row = (await conn.execute(sa.select(orders).where(
                orders.c.rx_number == order.rx_number,
                orders.c.fill_number == order.fill_number))).mappings().first()
            if row is not None:
                existing = order_record(row)
                differ = [k for k in _SAME if getattr(existing, k) != values[k]]
                if differ:
                    raise PrescriptionConflict(
                        f"prescription {order.rx_number} fill {order.fill_number} is order "
                        f"{existing.id} already, which differs in {', '.join(differ)}: a "
                        f"changed prescription is a new prescription number (or the next "
                        f"fill); nothing was stored")
                return existing, False
            result = await conn.execute(sa.insert(orders).values(
                **values, state=OrderState.RECEIVED, received_at=now, updated_at=now,
                schedule=drug.dea_schedule if drug is not None else None))
            order_id = inserted_id(result)
            await conn.execute(sa.insert(order_events).values(
                order_id=order_id, from_state=None, to_state=OrderState.RECEIVED, who=who, at=now))
            await record(conn, now, who, "order received", f"order:{order_id}", None,
                         {"state": OrderState.RECEIVED, "ndc": order.ndc,
                          "quantity": order.quantity, "fill_number": order.fill_number})
            if then is not None:
                await transition(conn, order_id, then, who, reason, self._db.clock.now())
            return await order_of(conn, order_id), True

    async def move_order(self, order_id: int, target: OrderState, *,
                         who: str = SUPERVISOR, reason: str | None = None) -> OrderRecord:
        """The supervisor's own moves (``orders.SUPERVISOR_MOVES``): an order taken, refused,
        or sent to exception when no robot can fill it. Every other move is a fill's or a
        person's step, with its checks; this refuses them."""
        async with self._db.transaction() as conn:
            current = (await order_of(conn, order_id)).state
            if (current, target) not in SUPERVISOR_MOVES:
                try:
                    check_transition(current, target)  # the state's own answer first
                except TransitionError as exc:
                    raise WorkflowError(str(exc)) from None
                raise WorkflowError(f"an order moves from {current} to {target} only by a "
                                    f"fill or a person's step, with its checks")
            await transition(conn, order_id, target, who, reason, self._db.clock.now())
            return await order_of(conn, order_id)

    async def order(self, order_id: int) -> OrderRecord:
        """One order."""
        async with self._db.engine.connect() as conn:
            return await order_of(conn, order_id)

    async def orders(self, *, state: OrderState | None = None,
                     rx_number: str | None = None) -> list[OrderRecord]:
        """Every order (in ``state``, of prescription ``rx_number``, when given), oldest
        first."""
        query = sa.select(orders).order_by(orders.c.id)
        if state is not None:
            query = query.where(orders.c.state == state)
        if rx_number is not None:
            query = query.where(orders.c.rx_number == rx_number)
        async with self._db.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [order_record(row) for row in rows]

    async def order_history(self, order_id: int,
                            ) -> list[tuple[str | None, str, str, str | None]]:
        """Every transition of an order: (from, to, who, reason), oldest first."""
        query = sa.select(order_events.c.from_state, order_events.c.to_state, order_events.c.who,
                          order_events.c.reason).where(order_events.c.order_id == order_id
                                                       ).order_by(order_events.c.id)
        async with self._db.engine.connect() as conn:
            return [tuple(row) for row in (await conn.execute(query)).all()]

    # -- fills ---------------------------------------------------------------

    async def start_fill(self, order_id: int, bin_id: int, *, who: str = SUPERVISOR,
                         numeric_job: bool = False) -> FillRecord:
        """Record that ``order_id`` is about to be counted from ``bin_id`` (QUEUED → DISPENSING).

        Committed before the robot is told anything, so that a restart finds it.
        FillRefused, with nothing recorded, when the bin does not hold the order's NDC,
        holds an expired lot, or its robot is out of service. The job id is
        ``<instance>-<fill id>``, or with ``numeric_job`` (a vial filler's 32-bit
        JOB_ID) the fill id offset by this store's job base.
        """
        async with self._db.transaction() as conn:
            order = await order_of(conn, order_id)
            check_transition(order.state, OrderState.DISPENSING)
            await _may_fill(conn, bin_id, order.ndc, self._db.clock.now().date())
            await transition(conn, order_id, OrderState.DISPENSING, who, None,
                             self._db.clock.now())
            result = await conn.execute(sa.insert(fills).values(
                order_id=order_id, bin_id=bin_id, quantity=order.quantity, state="dispensing",
                started_at=self._db.clock.now()))
            fill_id = inserted_id(result)
            job = (str((self._db.job_base + fill_id - 1) % JOB_SPACE + 1) if numeric_job
                   else f"{self._db.instance}-{fill_id}")
            await conn.execute(sa.update(fills).where(fills.c.id == fill_id).values(job=job))
            return await _fill(conn, fill_id)

    async def check_resume(self, fill_id: int) -> None:
        """An open fill the robot never started is about to be sent after a reconnect: the
        same checks as at its start, today (FillRefused says why not)."""
        async with self._db.engine.connect() as conn:
            fill = await _fill(conn, fill_id)
            await _may_fill(conn, fill.bin_id, fill.ndc, self._db.clock.now().date())

    async def finish_fill(self, fill_id: int, result: FillResult, *,
                          who: str = SUPERVISOR, then: OrderState | None = None) -> FillRecord:
        """Record how a fill ended, take its count off the bin, and move its order on.

        The order goes to FILLED or EXCEPTION, or to ``then`` (QUEUED, to fill it
        again). A stopped fill's tablets are recorded as a partial vial set aside.
        """
        if then not in (None, OrderState.QUEUED):
            raise StoreError(f"a fill's order goes on to filled, exception or queued, not "
                             f"{then}")
        now = self._db.clock.now()
        async with self._db.transaction() as conn:
            fill = await _fill(conn, fill_id)
            if fill.state != "dispensing":
                raise StoreError(f"fill {fill_id} already ended ({fill.outcome})")
            check = result.check
            await conn.execute(sa.update(fills).where(fills.c.id == fill_id).values(
                state="ended", outcome=result.outcome, counted=result.counted,
                weight_mg=result.weight_mg,
                expected_mg=check.expected_mg if check else None,
                tolerance_mg=check.tolerance_mg if check else None,
                verdict=check.verdict if check else None, detail=result.detail, ended_at=now))
            if result.counted:
                await take_from_bin(conn, await bin_by_id(conn, fill.bin_id), result.counted,
                                    kind="fill", who=who, reason=result.outcome, at=now,
                                    fill_id=fill_id)
            if result.counted and result.outcome in PARTIAL_OUTCOMES:
                await set_vial_aside(conn, fill, result.counted, cause="partial", who=who,
                                     at=now, reason=result.detail)
            target = then or (OrderState.FILLED if result.outcome is FillOutcome.FILLED
                              else OrderState.EXCEPTION)
            await transition(conn, fill.order_id, target, who, result.detail,
                             self._db.clock.now())
            ended = await _fill(conn, fill_id)
            if self._db.topics is not None and ended.outcome is FillOutcome.FILLED:
                await enqueue(conn, [self._db.topics.event(
                    "fill_done", now, fill=ended.id, order=ended.order_id, robot=ended.robot,
                    bin=ended.bin, ndc=ended.ndc, quantity=ended.counted)], now)
            return ended

    async def open_fills(self, robot: str | None = None) -> list[FillRecord]:
        """Fills that started and whose outcome is not recorded yet."""
        query = fill_query().where(fills.c.state == "dispensing")
        if robot is not None:
            query = query.where(bins.c.robot == robot)
        async with self._db.engine.connect() as conn:
            rows = (await conn.execute(query.order_by(fills.c.id))).mappings().all()
        return [fill_record(row) for row in rows]

    async def fill(self, fill_id: int) -> FillRecord | None:
        """One fill, or None."""
        async with self._db.engine.connect() as conn:
            row = (await conn.execute(fill_query().where(fills.c.id == fill_id))
                   ).mappings().first()
        return None if row is None else fill_record(row)

    async def fill_by_job(self, job: str) -> FillRecord | None:
        """The fill a robot knows as ``job``, or None."""
        async with self._db.engine.connect() as conn:
            row = (await conn.execute(fill_query().where(fills.c.job == job))).mappings().first()
        return None if row is None else fill_record(row)

    async def fills(self, order_id: int | None = None) -> list[FillRecord]:
        """Every fill (of one order, when given), oldest first."""
        query = fill_query()
        if order_id is not None:
            query = query.where(fills.c.order_id == order_id)
        async with self._db.engine.connect() as conn:
            rows = (await conn.execute(query.order_by(fills.c.id))).mappings().all()
        return [fill_record(row) for row in rows]

    async def fill_lots(self, fill_id: int) -> list[tuple[str, Any]]:
        """The lots (and their expiry) a fill's tablets came from."""
        async with self._db.engine.connect() as conn:
            return await lots_of(conn, fill_id)

    # -- settings people change --------------------------------------------------

    async def info(self, key: str) -> str | None:
        """A value people set (the pharmacist on duty…), or None."""
        async with self._db.engine.connect() as conn:
            value = await conn.scalar(sa.select(store_info.c.value).where(
                store_info.c.key == key))
        return None if value is None else str(value)

    async def set_info(self, key: str, value: str, *, who: str) -> None:
        """Set a value people change, audited."""
        now = self._db.clock.now()
        async with self._db.transaction() as conn:
            before = await conn.scalar(sa.select(store_info.c.value).where(
                store_info.c.key == key))
            if before is None:
                await conn.execute(sa.insert(store_info).values(key=key, value=value))
            else:
                await conn.execute(sa.update(store_info).where(store_info.c.key == key)
                                   .values(value=value))
            await record(conn, now, who, f"{key} set", f"site:{key}", {"value": before},
                         {"value": value})


async def _may_fill(conn: AsyncConnection, bin_id: int, ndc: str, today: Any) -> None:
    """FillRefused unless a fill of ``ndc`` may be counted from ``bin_id`` today."""
    source = await bin_by_id(conn, bin_id)
    where = f"{source.robot} bin {source.bin}"
    if source.ndc != ndc:
        raise FillRefused(f"{where} holds NDC {source.ndc}, not the order's {ndc}: refusing to "
                          f"count from it")
    if why := await uncalibrated_why(conn, source.robot, source.bin, ndc):
        raise FillRefused(why)
    if why := await scale_out_of_span_why(conn, source.robot):
        raise FillRefused(why)
    if source.robot in await robots_out_of_service(conn):
        raise FillRefused(f"{source.robot} is out of service for maintenance: it takes no "
                          f"fills")
    held = [(lot.lot, lot.expiry) for lot in source.lots if lot.on_hand > 0]
    if expired := expired_lots(held, today):
        raise FillRefused(
            f"{where} holds expired stock ("
            + ", ".join(f"lot {lot} expired {expiry:%Y-%m-%d}" for lot, expiry in expired)
            + "): unload it before anything is counted from it")


async def _fill(conn: AsyncConnection, fill_id: int) -> FillRecord:
    row = (await conn.execute(fill_query().where(fills.c.id == fill_id))).mappings().first()
    if row is None:
        raise StoreError(f"no fill {fill_id}")
    return fill_record(row)
