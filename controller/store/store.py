"""The store, in the pharmacy's terms: orders, fills, bins and bin movements.

One SQLite file (WAL, synchronous=FULL) by default; any SQLAlchemy async URL
works the same. SQL lives here and nowhere else. Every change is one
transaction, committed before the caller acts on it.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from controller.clock import Clock
from controller.domain.audit import AuditKey
from controller.domain.orders import (
    PARTIAL_OUTCOMES,
    FillOutcome,
    Order,
    OrderState,
    check_transition,
)
from controller.domain.weight import WeightCheck
from controller.messages import Topics
from controller.store.alarm_records import AlarmRecords
from controller.store.audit_records import KEY as AUDIT_KEY
from controller.store.audit_records import AuditRecords, record
from controller.store.errors import StoreError
from controller.store.people import PeopleRecords
from controller.store.schema import (
    bin_movements,
    bins,
    fills,
    order_events,
    orders,
    set_aside,
    store_info,
)
from controller.store.stock import (
    DISPOSITIONS,
    SUPERVISOR,
    StockRecords,
    bin_by_id,
    enqueue,
    inserted_id,
    return_to_bin,
    take_from_bin,
)
from controller.store.verification import VerificationRecords

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """A stored order."""

    id: int
    rx_number: str
    patient_id: str
    patient_name: str
    patient_birth_date: date
    ndc: str
    quantity: int
    state: OrderState
    reason: str | None
    received_at: datetime
    updated_at: datetime
    easy_open: bool
    patient_address: str | None = None
    sig: str = ""
    prescriber_name: str | None = None
    prescriber_npi: str | None = None
    prescriber_dea: str | None = None
    refills: int = 0
    days_supply: int | None = None
    priority: str = "routine"
    fulfilment: str = "pickup"
    written_on: date | None = None


@dataclass(frozen=True, slots=True)
class FillRecord:
    """One attempt to fill an order on one robot's bin."""

    id: int
    order_id: int
    bin_id: int
    robot: str
    bin: int
    ndc: str
    """What the bin holds, which is what the order asked for."""
    job: str
    quantity: int
    state: str
    """``dispensing`` until the outcome is recorded, then ``ended``."""
    outcome: FillOutcome | None
    counted: int | None
    weight_mg: int | None
    expected_mg: float | None
    tolerance_mg: float | None
    verdict: str | None
    detail: str | None
    started_at: datetime
    ended_at: datetime | None
    counted_by: str | None = None
    """Who counted it by hand; None when a robot counted it."""


@dataclass(frozen=True, slots=True)
class FillResult:
    """What a fill came to: the outcome, the count, the weight and its check."""

    outcome: FillOutcome
    counted: int
    weight_mg: int | None
    check: WeightCheck | None
    detail: str


@dataclass(frozen=True, slots=True)
class SetAsideVial:
    """A partial vial a failed fill left, and what became of its tablets."""

    id: int
    fill_id: int
    bin_id: int
    count: int
    at: datetime
    disposition: str | None
    """None until a technician records ``returned`` (to the bin) or ``wasted``."""
    disposed_by: str | None
    disposed_at: datetime | None


JOB_SPACE = 0xFFFF_FFFF
"""Numeric job ids (a vial filler's JOB_ID) run 1 … 2³² − 1."""


def sqlite_url(path: Path) -> str:
    """The async SQLAlchemy URL of a SQLite file."""
    return f"sqlite+aiosqlite:///{path}"


class Store(StockRecords, AlarmRecords, AuditRecords, PeopleRecords, VerificationRecords):
    """The pharmacy's records. Open with :meth:`open`; close with :meth:`close`.

    With ``topics`` set, changes that the MQTT ICD announces put their
    messages in the outbox in the same transaction.
    """

    def __init__(self, engine: AsyncEngine, clock: Clock, instance: str, job_base: int,
                 receipts: AsyncEngine | None = None, *,
                 audit_key: AuditKey | None = None) -> None:
        self._engine = engine
        self._audit_key = audit_key
        """Anchors every audit entry written through this store (None: unanchored)."""
        self._receipts = receipts or engine
        """Where the broker's acknowledgements are written (see ``open``)."""
        self._clock = clock
        self._write = asyncio.Lock()
        self.instance = instance
        """A short id of this store, part of every job id so that no two stores collide."""
        self.job_base = job_base
        """A random offset of this store's numeric job ids, for the same reason."""
        self.topics: Topics | None = None

    @classmethod
    async def open(cls, url: str, *, clock: Clock | None = None,
                   audit_key: AuditKey | None = None) -> Store:
        """Open (creating and migrating as needed) the store at ``url``; its audit entries are
        anchored with ``audit_key``."""
        if url.startswith("sqlite"):
            path = url.split("///", 1)[1]
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine = create_async_engine(url, connect_args={"timeout": 30})
            sa.event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
            # A message leaving the outbox once the broker acknowledged it needs no fsync of
            # its own: in WAL mode a commit survives the process dying; only a power cut could
            # undo it, and then the message is sent once more. One fsync per message would
            # cap the outbox at a couple of hundred messages a second.
            receipts = create_async_engine(url, connect_args={"timeout": 30})
            sa.event.listen(receipts.sync_engine, "connect", _sqlite_receipt_pragmas)
        else:
            engine = receipts = create_async_engine(url)
        async with engine.begin() as conn:
            await conn.run_sync(_migrate)
            instance = await conn.scalar(
                sa.select(store_info.c.value).where(store_info.c.key == "instance"))
            if instance is None:
                instance = secrets.token_hex(2).upper()
                await conn.execute(sa.insert(store_info).values(key="instance", value=instance))
            job_base = await conn.scalar(
                sa.select(store_info.c.value).where(store_info.c.key == "job_base"))
            if job_base is None:
                job_base = str(secrets.randbelow(JOB_SPACE))
                await conn.execute(sa.insert(store_info).values(key="job_base", value=job_base))
        return cls(engine, clock or Clock(), instance, int(job_base), receipts,
                   audit_key=audit_key)

    async def close(self) -> None:
        """Close every connection."""
        await self._engine.dispose()
        await self._receipts.dispose()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncConnection]:
        """One write transaction. It takes the database's write lock at once, so that what
        it reads stays true until it commits, even against another process (the CLI)."""
        async with self._write, self._engine.begin() as conn:
            await conn.execute(sa.update(store_info).where(store_info.c.key == "instance")
                               .values(value=store_info.c.value))
            conn.info[AUDIT_KEY] = self._audit_key
            yield conn

    # -- orders --------------------------------------------------------------

    async def receive_order(self, order: Order, who: str = SUPERVISOR, *,
                            then: OrderState | None = None,
                            reason: str | None = None) -> OrderRecord:
        """Record a new order as RECEIVED, and moved on to ``then`` (QUEUED, REJECTED) in the
        same transaction when given: both transitions are stored, in one commit."""
        now = self._clock.now()
        prescriber = order.prescriber
        async with self._transaction() as conn:
            result = await conn.execute(sa.insert(orders).values(
                rx_number=order.rx_number, patient_id=order.patient.id,
                patient_name=order.patient.name, patient_birth_date=order.patient.birth_date,
                ndc=order.ndc, quantity=order.quantity, state=OrderState.RECEIVED,
                received_at=now, updated_at=now, easy_open=order.easy_open,
                patient_address=order.patient.address, sig=order.sig,
                prescriber_name=prescriber.name if prescriber else None,
                prescriber_npi=prescriber.npi if prescriber else None,
                prescriber_dea=prescriber.dea if prescriber else None,
                refills=order.refills, days_supply=order.days_supply, priority=order.priority,
                fulfilment=order.fulfilment, written_on=order.written))
            order_id = inserted_id(result)
            await conn.execute(sa.insert(order_events).values(
                order_id=order_id, from_state=None, to_state=OrderState.RECEIVED, who=who, at=now))
            await record(conn, now, who, "order received", f"order:{order_id}", None,
                         {"state": OrderState.RECEIVED, "ndc": order.ndc,
                          "quantity": order.quantity})
            if then is not None:
                await self._move(conn, order_id, then, who, reason)
            return await self._order(conn, order_id)

    async def move_order(self, order_id: int, target: OrderState, *, who: str = SUPERVISOR,
                         reason: str | None = None) -> OrderRecord:
        """Move an order to ``target``, as the workflow allows, recording who and why."""
        async with self._transaction() as conn:
            await self._move(conn, order_id, target, who, reason)
            return await self._order(conn, order_id)

    async def order(self, order_id: int) -> OrderRecord:
        """One order."""
        async with self._engine.connect() as conn:
            return await self._order(conn, order_id)

    async def orders(self) -> list[OrderRecord]:
        """Every order, oldest first."""
        async with self._engine.connect() as conn:
            rows = (await conn.execute(sa.select(orders).order_by(orders.c.id))).mappings().all()
        return [_order_record(row) for row in rows]

    async def order_history(self, order_id: int) -> list[tuple[str | None, str, str, str | None]]:
        """Every transition of an order: (from, to, who, reason), oldest first."""
        query = sa.select(order_events.c.from_state, order_events.c.to_state, order_events.c.who,
                          order_events.c.reason).where(order_events.c.order_id == order_id
                                                       ).order_by(order_events.c.id)
        async with self._engine.connect() as conn:
            return [tuple(row) for row in (await conn.execute(query)).all()]

    # -- fills ---------------------------------------------------------------

    async def start_fill(self, order_id: int, bin_id: int, *, who: str = SUPERVISOR,
                         numeric_job: bool = False) -> FillRecord:
        """Record that ``order_id`` is about to be counted from ``bin_id`` (QUEUED → DISPENSING).

        Committed before the robot is told anything, so that a restart finds it.
        The job id is ``<instance>-<fill id>``, or with ``numeric_job`` (a vial
        filler's 32-bit JOB_ID) the fill id offset by this store's job base.
        """
        async with self._transaction() as conn:
            order = await self._order(conn, order_id)
            held = await conn.scalar(sa.select(bins.c.ndc).where(bins.c.id == bin_id))
            if held != order.ndc:
                raise StoreError(f"bin {bin_id} holds NDC {held}, not the order's {order.ndc}: "
                                 f"refusing to count from it")
            await self._move(conn, order_id, OrderState.DISPENSING, who, None)
            result = await conn.execute(sa.insert(fills).values(
                order_id=order_id, bin_id=bin_id, quantity=order.quantity, state="dispensing",
                started_at=self._clock.now()))
            fill_id = inserted_id(result)
            job = (str((self.job_base + fill_id - 1) % JOB_SPACE + 1) if numeric_job
                   else f"{self.instance}-{fill_id}")
            await conn.execute(sa.update(fills).where(fills.c.id == fill_id).values(job=job))
            return await self._fill(conn, fill_id)

    async def finish_fill(self, fill_id: int, result: FillResult, *, who: str = SUPERVISOR,
                          then: OrderState | None = None) -> FillRecord:
        """Record how a fill ended, take its count off the bin, and move its order on.

        The order goes to FILLED or EXCEPTION, or to ``then`` (QUEUED to fill it
        again). A stopped fill's tablets are recorded as a partial vial set aside.
        """
        now = self._clock.now()
        async with self._transaction() as conn:
            fill = await self._fill(conn, fill_id)
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
                await conn.execute(sa.insert(set_aside).values(
                    fill_id=fill_id, bin_id=fill.bin_id, count=result.counted, at=now))
            target = then or (OrderState.FILLED if result.outcome is FillOutcome.FILLED
                              else OrderState.EXCEPTION)
            await self._move(conn, fill.order_id, target, who, result.detail)
            ended = await self._fill(conn, fill_id)
            if self.topics is not None and ended.outcome is FillOutcome.FILLED:
                await enqueue(conn, [self.topics.event(
                    "fill_done", now, fill=ended.id, order=ended.order_id, robot=ended.robot,
                    bin=ended.bin, ndc=ended.ndc, quantity=ended.counted)], now)
            return ended

    async def open_fills(self, robot: str | None = None) -> list[FillRecord]:
        """Fills that started and whose outcome is not recorded yet."""
        query = _fill_query().where(fills.c.state == "dispensing")
        if robot is not None:
            query = query.where(bins.c.robot == robot)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query.order_by(fills.c.id))).mappings().all()
        return [_fill_record(row) for row in rows]

    async def fill(self, fill_id: int) -> FillRecord | None:
        """One fill, or None."""
        async with self._engine.connect() as conn:
            row = (await conn.execute(_fill_query().where(fills.c.id == fill_id))
                   ).mappings().first()
        return None if row is None else _fill_record(row)

    async def fill_by_job(self, job: str) -> FillRecord | None:
        """The fill a robot knows as ``job``, or None."""
        async with self._engine.connect() as conn:
            row = (await conn.execute(_fill_query().where(fills.c.job == job))).mappings().first()
        return None if row is None else _fill_record(row)

    async def fills(self, order_id: int | None = None) -> list[FillRecord]:
        """Every fill (of one order, when given), oldest first."""
        query = _fill_query()
        if order_id is not None:
            query = query.where(fills.c.order_id == order_id)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query.order_by(fills.c.id))).mappings().all()
        return [_fill_record(row) for row in rows]

    async def fill_lots(self, fill_id: int) -> list[tuple[str, date]]:
        """The lots (and their expiry) a fill's tablets came from."""
        query = sa.select(bin_movements.c.lot, bin_movements.c.expiry).where(
            bin_movements.c.fill_id == fill_id, bin_movements.c.kind == "fill").distinct()
        async with self._engine.connect() as conn:
            return [(lot, expiry) for lot, expiry in (await conn.execute(query)).all()]

    # -- settings people change --------------------------------------------------

    async def info(self, key: str) -> str | None:
        """A value people set (the pharmacist on duty…), or None."""
        async with self._engine.connect() as conn:
            value = await conn.scalar(sa.select(store_info.c.value).where(
                store_info.c.key == key))
        return None if value is None else str(value)

    async def set_info(self, key: str, value: str, *, who: str) -> None:
        """Set a value people change, audited."""
        now = self._clock.now()
        async with self._transaction() as conn:
            before = await conn.scalar(sa.select(store_info.c.value).where(
                store_info.c.key == key))
            if before is None:
                await conn.execute(sa.insert(store_info).values(key=key, value=value))
            else:
                await conn.execute(sa.update(store_info).where(store_info.c.key == key)
                                   .values(value=value))
            await record(conn, now, who, f"{key} set", f"site:{key}", {"value": before},
                         {"value": value})

    # -- partial vials ---------------------------------------------------------

    async def set_aside_vials(self, *, pending_only: bool = False) -> list[SetAsideVial]:
        """Partial vials set aside, oldest first (only those awaiting a decision, if asked)."""
        query = sa.select(set_aside).order_by(set_aside.c.id)
        if pending_only:
            query = query.where(set_aside.c.disposition.is_(None))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [SetAsideVial(**dict(row)) for row in rows]

    async def dispose_vial(self, vial_id: int, disposition: str, *, who: str) -> SetAsideVial:
        """A technician returned a partial vial's tablets to their bin, or wasted them."""
        if disposition not in DISPOSITIONS:
            raise ValueError(f"disposition {disposition!r}: expected one of {DISPOSITIONS}")
        now = self._clock.now()
        async with self._transaction() as conn:
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

    # -- inside a transaction --------------------------------------------------

    async def _move(self, conn: AsyncConnection, order_id: int, target: OrderState, who: str,
                    reason: str | None) -> None:
        current = (await self._order(conn, order_id)).state
        check_transition(current, target)
        now = self._clock.now()
        await conn.execute(sa.update(orders).where(orders.c.id == order_id).values(
            state=target, reason=reason, updated_at=now))
        await conn.execute(sa.insert(order_events).values(
            order_id=order_id, from_state=current, to_state=target, who=who, reason=reason,
            at=now))
        await record(conn, now, who, f"order {target}", f"order:{order_id}",
                     {"state": current}, {"state": target, "reason": reason})

    async def _order(self, conn: AsyncConnection, order_id: int) -> OrderRecord:
        row = (await conn.execute(sa.select(orders).where(orders.c.id == order_id))
               ).mappings().first()
        if row is None:
            raise StoreError(f"no order {order_id}")
        return _order_record(row)

    async def _fill(self, conn: AsyncConnection, fill_id: int) -> FillRecord:
        row = (await conn.execute(_fill_query().where(fills.c.id == fill_id))).mappings().first()
        if row is None:
            raise StoreError(f"no fill {fill_id}")
        return _fill_record(row)


def _fill_query() -> sa.Select[Any]:
    return sa.select(fills, bins.c.robot, bins.c.bin, bins.c.ndc).select_from(fills.join(bins))


def _order_record(row: Any) -> OrderRecord:
    values = dict(row)
    values["state"] = OrderState(values["state"])
    return OrderRecord(**values)


def _fill_record(row: Any) -> FillRecord:
    values = dict(row)
    if values["outcome"] is not None:
        values["outcome"] = FillOutcome(values["outcome"])
    return FillRecord(**values)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_receipt_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _migrate(connection: sa.Connection) -> None:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
