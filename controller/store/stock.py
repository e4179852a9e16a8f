"""The store's bins: lots, movements, restocks, corrections, unloads and recalls.

A bin's count is the sum of its movements; a lot's count, the sum of the
movements of that lot. Tablets leave a bin first-expired-first-out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from controller.domain.gs1 import BottleScan
from controller.domain.roles import Duty, Person, require
from controller.domain.stock import BinStock, Lot, RestockPolicy, check_restock, fefo, take
from controller.store.audit_records import record
from controller.store.calibration import seed_from_configuration
from controller.store.errors import StoreError
from controller.store.outbox import enqueue
from controller.store.recall import RecalledVial, recall_lot
from controller.store.schema import bin_movements, bins, fills
from controller.store.usage import Usage, usage_since

if TYPE_CHECKING:
    from controller.store.store import Store

SUPERVISOR = "supervisor"
"""Who the store records for what the supervisor did by itself."""


class BinDrugMismatch(StoreError):
    """The configuration and the store disagree on what drug a bin holds."""


@dataclass(frozen=True, slots=True)
class BinSpec:
    """A bin as configuration describes it."""

    robot: str
    bin: int
    ndc: str
    lot: str
    expiry: date
    on_hand: int
    par: int
    capacity: int
    calibration: tuple[tuple[str, int], ...] = ()
    """The configuration's counting settings for this bin (for its NDC)."""


@dataclass(frozen=True, slots=True)
class BinRecord:
    """A bin, its lots and its count on hand (the sum of its movements)."""

    id: int
    robot: str
    bin: int
    ndc: str
    par: int
    capacity: int
    on_hand: int
    lots: tuple[Lot, ...]
    """Lots with tablets on hand, in the order they are dispensed (first to expire first);
    when the bin is empty, the last lot it held, at 0."""

    @property
    def lot(self) -> str:
        """The lot dispensed next."""
        return self.lots[0].lot

    @property
    def expiry(self) -> date:
        """The earliest expiry of what the bin holds."""
        return self.lots[0].expiry

    def stock(self) -> BinStock:
        """What a restock is checked against."""
        return BinStock(self.robot, self.bin, self.ndc, self.capacity,
                        tuple(lot for lot in self.lots if lot.on_hand > 0))


@dataclass(frozen=True, slots=True)
class Movement:
    """One change of a bin's count, of one lot."""

    id: int
    bin_id: int
    kind: str
    quantity: int
    fill_id: int | None
    who: str
    reason: str | None
    at: datetime
    lot: str
    expiry: date
    serial: str | None




class StockRecords:
    """The bins' half of the store (mixed into Store)."""

    def __init__(self, db: Store) -> None:
        self._db = db

    async def ensure_bins(self, specs: Iterable[BinSpec], who: str = SUPERVISOR) -> None:
        """Create the bins that do not exist yet, loaded with their configured count, and
        record each bin's configured calibration. A bin that exists keeps its recorded count
        and lots: the store, not the configuration file, knows what was dispensed since. A
        bin the configuration says holds another drug than the store records is
        BinDrugMismatch (every such bin at once), and nothing changes: a bin's drug changes
        only by an unload and a load."""
        now = self._db.clock.now()
        async with self._db.transaction() as conn:
            mismatched = []
            for spec in specs:
                held = await conn.scalar(sa.select(bins.c.ndc).where(
                    bins.c.robot == spec.robot, bins.c.bin == spec.bin))
                if held is not None and held != spec.ndc:
                    mismatched.append(f"{spec.robot}/{spec.bin} holds NDC {held} in the "
                                      f"store; the configuration says {spec.ndc}")
                    continue
                if held is None:
                    result = await conn.execute(sa.insert(bins).values(
                        robot=spec.robot, bin=spec.bin, ndc=spec.ndc, lot=spec.lot,
                        expiry=spec.expiry, par=spec.par, capacity=spec.capacity))
                    await add_movement(conn, dict(
                        bin_id=inserted_id(result), kind="load", quantity=spec.on_hand,
                        who=who, reason="loaded from configuration", at=now, lot=spec.lot,
                        expiry=spec.expiry))
                await seed_from_configuration(conn, spec.robot, spec.bin, spec.ndc,
                                              dict(spec.calibration), who, now)
            if mismatched:
                raise BinDrugMismatch(
                    "the configuration names another drug than the store records for "
                    + "; ".join(mismatched) + ". A bin's drug changes only on purpose: "
                    "`rxfill stock unload ROBOT/BIN`, then `rxfill stock load ROBOT/BIN --scan "
                    "...` with a bottle of the new drug, then the configuration's ndc; or put "
                    "the configuration back")

    async def bins(self) -> list[BinRecord]:
        """Every bin with its lots and count on hand."""
        async with self._db.engine.connect() as conn:
            return await bin_records(conn)

    async def bin(self, robot: str, number: int) -> BinRecord:
        """One bin, by robot and channel or cell."""
        async with self._db.engine.connect() as conn:
            return await _one_bin(conn, robot, number)

    async def restock(self, robot: str, number: int, scan: BottleScan, ndc: str, *,
                      quantity: int, by: Person, policy: RestockPolicy, today: date,
                      partial: bool) -> BinRecord:
        """Pour a scanned bottle into a bin, as the restock rules allow (RestockRefused).

        A full bottle's serial can be restocked once; a partial bottle (a counted
        quantity) may be poured in more than one go.
        """
        require(by, Duty.RESTOCK)
        who = by.name
        now = self._db.clock.now()
        async with self._db.transaction() as conn:
            record = await _one_bin(conn, robot, number)
            check_restock(record.stock(), scan, ndc, quantity, today=today, policy=policy)
            if not partial:
                before = (await conn.execute(sa.select(bin_movements.c.at).where(
                    bin_movements.c.kind == "restock", bin_movements.c.serial == scan.serial,
                    bin_movements.c.lot == scan.lot))).first()
                if before is not None:
                    raise StoreError(f"bottle serial {scan.serial} of lot {scan.lot} was "
                                     f"restocked on {before[0]:%Y-%m-%d %H:%M}: a full bottle "
                                     f"goes in once (give --quantity for the rest of a partial "
                                     f"bottle)")
            held = {lot.lot for lot in record.lots if lot.on_hand > 0}
            reason = (f"restocked by scan, {'partial' if partial else 'full'} bottle"
                      + (f"; lot {scan.lot} added beside {', '.join(sorted(held))}"
                         if held - {scan.lot} else "")
                      + (f"; lot change from {record.lot}" if not held and
                         record.lot != scan.lot else ""))
            await add_movement(conn, dict(
                bin_id=record.id, kind="restock", quantity=quantity, who=who, reason=reason,
                at=now, lot=scan.lot, expiry=scan.expiry, serial=scan.serial))
            await conn.execute(sa.update(bins).where(bins.c.id == record.id).values(
                lot=scan.lot, expiry=scan.expiry))
            after = await _one_bin(conn, robot, number)
            if self._db.topics is not None:
                await enqueue(conn, [self._db.topics.event(
                    "restocked", now, robot=robot, bin=number, ndc=ndc, lot=scan.lot,
                    expiry=f"{scan.expiry:%Y-%m-%d}", quantity=quantity,
                    on_hand=after.on_hand)], now)
            return after

    async def correct_bin(self, bin_id: int, count: int, *, by: Person,
                          reason: str) -> BinRecord:
        """Record that the bin truly holds ``count`` (0 to its capacity): movements of the
        difference, by lot."""
        require(by, Duty.CORRECT_STOCK)
        if not reason.strip():
            raise ValueError("a count correction needs a reason")
        async with self._db.transaction() as conn:
            await _correct(conn, await bin_by_id(conn, bin_id), count, by.name, reason,
                           self._db.clock.now())
            return await bin_by_id(conn, bin_id)

    async def bin_ran_empty(self, bin_id: int, job: str) -> BinRecord:
        """The robot said the bin ran empty during ``job``: it holds nothing, whatever the
        sum of its movements said (a correction by the supervisor, on the robot's word)."""
        async with self._db.transaction() as conn:
            await _correct(conn, await bin_by_id(conn, bin_id), 0, SUPERVISOR,
                           f"bin ran empty during job {job}", self._db.clock.now())
            return await bin_by_id(conn, bin_id)

    async def unload_bin(self, bin_id: int, *, by: Person, reason: str) -> BinRecord:
        """Everything taken out of a bin (a lot change, an expired or recalled lot)."""
        require(by, Duty.UNLOAD_BIN)
        who = by.name
        if not reason.strip():
            raise ValueError("an unload needs a reason")
        async with self._db.transaction() as conn:
            record = await bin_by_id(conn, bin_id)
            for lot in record.lots:
                if lot.on_hand:
                    await add_movement(conn, dict(
                        bin_id=bin_id, kind="unload", quantity=-lot.on_hand, who=who,
                        reason=reason, at=self._db.clock.now(), lot=lot.lot, expiry=lot.expiry))
            return await bin_by_id(conn, bin_id)

    async def load_bin(self, robot: str, number: int, scan: BottleScan, ndc: str, *,
                       quantity: int, by: Person, policy: RestockPolicy,
                       today: date) -> BinRecord:
        """Give an empty bin a drug (a pharmacist's decision): the scanned bottle's NDC, lot
        and expiry (RestockRefused or StoreError say why not). The bin must hold nothing and
        have no fill running."""
        require(by, Duty.LOAD_BIN)
        who = by.name
        now = self._db.clock.now()
        async with self._db.transaction() as conn:
            held = await _one_bin(conn, robot, number)
            if held.on_hand:
                raise StoreError(f"{robot}/{number} still holds {held.on_hand} of NDC "
                                 f"{held.ndc}: unload it first (rxfill stock unload)")
            running = await conn.scalar(sa.select(fills.c.id).where(
                fills.c.bin_id == held.id, fills.c.state == "dispensing").limit(1))
            if running is not None:
                raise StoreError(f"{robot}/{number} has fill {running} running: wait for it")
            check_restock(BinStock(robot, number, ndc, held.capacity, ()), scan, ndc,
                          quantity, today=today, policy=policy)
            await conn.execute(sa.update(bins).where(bins.c.id == held.id).values(
                ndc=ndc, lot=scan.lot, expiry=scan.expiry))
            await record(conn, now, who, "bin drug changed" if ndc != held.ndc else "bin loaded",
                         f"bin:{robot}/{number}", {"ndc": held.ndc}, {"ndc": ndc, "lot": scan.lot})
            await add_movement(conn, dict(
                bin_id=held.id, kind="load", quantity=quantity, who=who,
                reason=f"loaded with NDC {ndc} by scan", at=now, lot=scan.lot,
                expiry=scan.expiry, serial=scan.serial))
            return await _one_bin(conn, robot, number)

    async def movements(self, bin_id: int) -> list[Movement]:
        """Every movement of one bin, oldest first."""
        query = sa.select(bin_movements).where(bin_movements.c.bin_id == bin_id).order_by(
            bin_movements.c.id)
        async with self._db.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [Movement(**dict(row)) for row in rows]

    async def usage(self, since: datetime) -> dict[int, Usage]:
        """Each bin's tablets filled since ``since``, and its first movement in that time."""
        async with self._db.engine.connect() as conn:
            return await usage_since(conn, since)

    async def recall(self, lot: str) -> list[RecalledVial]:
        """Every vial that got tablets of ``lot``, or may have because its bin mixed lots."""
        async with self._db.engine.connect() as conn:
            return await recall_lot(conn, lot)


async def _correct(conn: AsyncConnection, record: BinRecord, count: int, who: str, reason: str,
                   at: datetime) -> None:
    """Movements of the difference between what the record holds and ``count``, by lot."""
    if count < 0:
        raise ValueError(f"a bin cannot hold {count} tablets; expected 0 or more")
    if count > record.capacity:
        raise ValueError(f"{record.robot}/{record.bin} holds at most {record.capacity}; a "
                         f"count of {count} cannot be right: count again")
    difference = count - record.on_hand
    if difference < 0:
        await take_from_bin(conn, record, -difference, kind="correction", who=who,
                            reason=reason, at=at)
    elif difference > 0:
        lot = record.lots[-1]
        await add_movement(conn, dict(
            bin_id=record.id, kind="correction", quantity=difference, who=who, reason=reason,
            at=at, lot=lot.lot, expiry=lot.expiry))


async def take_from_bin(conn: AsyncConnection, record: BinRecord, count: int, *, kind: str,
                        who: str, reason: str | None, at: datetime,
                        fill_id: int | None = None) -> None:
    """``count`` tablets leave the bin, one movement per lot, first-expired-first-out."""
    for lot, n in take(record.lots, count):
        await add_movement(conn, dict(
            bin_id=record.id, kind=kind, quantity=-n, fill_id=fill_id, who=who, reason=reason,
            at=at, lot=lot.lot, expiry=lot.expiry))


async def return_to_bin(conn: AsyncConnection, fill_id: int, count: int, *, who: str,
                        reason: str, at: datetime) -> None:
    """A fill's tablets go back to the lots they came from (the last taken first)."""
    rows = (await conn.execute(sa.select(bin_movements).where(
        bin_movements.c.fill_id == fill_id, bin_movements.c.kind == "fill").order_by(
        bin_movements.c.id.desc()))).mappings().all()
    left = count
    for row in rows:
        n = min(left, -row["quantity"])
        if n <= 0:
            continue
        await add_movement(conn, dict(
            bin_id=row["bin_id"], kind="return", quantity=n, fill_id=fill_id, who=who,
            reason=reason, at=at, lot=row["lot"], expiry=row["expiry"]))
        left -= n
    if left:
        raise StoreError(f"fill {fill_id} took fewer tablets than the {count} returned")


async def add_movement(conn: AsyncConnection, values: dict[str, Any]) -> None:
    """One bin movement, and its line in the audit trail, in the caller's transaction."""
    await conn.execute(sa.insert(bin_movements).values(**values))
    where = (await conn.execute(sa.select(bins.c.robot, bins.c.bin).where(
        bins.c.id == values["bin_id"]))).one()
    detail = {k: values.get(k) for k in ("quantity", "lot", "expiry", "serial", "fill_id",
                                          "reason") if values.get(k) is not None}
    await record(conn, values["at"], values["who"], f"bin {values['kind']}",
                 f"bin:{where[0]}/{where[1]}", None, detail)


def inserted_id(result: sa.CursorResult[Any]) -> int:
    """The primary key of the row an INSERT just made."""
    key = result.inserted_primary_key
    if not key or key[0] is None:
        raise StoreError("the database returned no id for a new row")
    return int(key[0])


ON_HAND = sa.func.coalesce(sa.func.sum(bin_movements.c.quantity), 0)
"""A bin's (or a lot's) count on hand: the sum of its movements."""


async def bin_records(conn: AsyncConnection, *, robot: str | None = None,
                       number: int | None = None, bin_id: int | None = None,
                       ) -> list[BinRecord]:
    query = sa.select(bins).order_by(bins.c.robot, bins.c.bin)
    if robot is not None:
        query = query.where(bins.c.robot == robot, bins.c.bin == number)
    if bin_id is not None:
        query = query.where(bins.c.id == bin_id)
    rows = (await conn.execute(query)).mappings().all()
    lots_query = (sa.select(bin_movements.c.bin_id, bin_movements.c.lot,
                            bin_movements.c.expiry, ON_HAND.label("on_hand"))
                  .group_by(bin_movements.c.bin_id, bin_movements.c.lot,
                            bin_movements.c.expiry))
    if len(rows) == 1:
        lots_query = lots_query.where(bin_movements.c.bin_id == rows[0]["id"])
    by_bin: dict[int, list[Lot]] = {}
    for bid, lot, expiry, on_hand in (await conn.execute(lots_query)).all():
        by_bin.setdefault(bid, []).append(Lot(lot, expiry, int(on_hand)))
    records = []
    for row in rows:
        lots = by_bin.get(row["id"], [])
        holding = fefo(tuple(lot for lot in lots if lot.on_hand != 0))
        shown = holding or (Lot(row["lot"], row["expiry"], 0),)
        records.append(BinRecord(
            id=row["id"], robot=row["robot"], bin=row["bin"], ndc=row["ndc"], par=row["par"],
            capacity=row["capacity"], on_hand=sum(lot.on_hand for lot in lots), lots=shown))
    return records


async def _one_bin(conn: AsyncConnection, robot: str, number: int) -> BinRecord:
    found = await bin_records(conn, robot=robot, number=number)
    if not found:
        every = (await conn.execute(sa.select(bins.c.robot, bins.c.bin))).all()
        robots = sorted({r for r, _ in every})
        if robot not in robots:
            raise StoreError(f"no robot {robot!r} in this store; expected one of "
                             f"{', '.join(robots) or 'none (no bins yet)'}")
        numbers = sorted(n for r, n in every if r == robot)
        raise StoreError(f"robot {robot} has no bin {number}; its bins are "
                         f"{', '.join(map(str, numbers))}")
    return found[0]


async def bin_by_id(conn: AsyncConnection, bin_id: int) -> BinRecord:
    found = await bin_records(conn, bin_id=bin_id)
    if not found:
        raise StoreError(f"no bin {bin_id}")
    return found[0]
