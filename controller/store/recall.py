"""Recalls: every vial that got tablets of a lot, or may have, each physical vial once."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from controller.store.schema import bin_movements, bins, fills, set_aside


@dataclass(frozen=True, slots=True)
class RecalledVial:
    """A fill that drew tablets of a recalled lot, or may have (the lots were mixed)."""

    fill_id: int
    order_id: int
    robot: str
    bin: int
    quantity: int
    """Tablets of the lot, as first-expired-first-out counted them."""
    at: datetime
    mixed: bool
    """The bin held other lots too: the vial may hold either."""
    fate: str | None = None
    """Where the vial is not with its order: ``wasted``, or set aside waiting for a
    decision (``set aside``)."""


async def recall_lot(conn: AsyncConnection, lot: str) -> list[RecalledVial]:
    """Every fill that drew tablets of ``lot``, or may have because its bin mixed lots."""
    query = sa.select(bin_movements.c.bin_id).where(bin_movements.c.lot == lot).distinct()
    found: list[RecalledVial] = []
    for bin_id in list((await conn.scalars(query)).all()):
        found.extend(await _recall_in_bin(conn, bin_id, lot))
    return sorted(found, key=lambda v: v.fill_id)


async def _recall_in_bin(conn: AsyncConnection, bin_id: int, lot: str) -> list[RecalledVial]:
    """Walk a bin's movements in order, keeping each lot's count, and note every fill that
    drew the lot or ran while it was in the bin beside another.

    A fill whose tablets all went back (a vial returned to stock, or recounted by hand into
    another fill) is no physical vial any more: it is not listed; the fill its tablets went
    to is. So each vial is listed once.
    """
    where = sa.select(bins.c.robot, bins.c.bin).where(bins.c.id == bin_id)
    robot, number = (await conn.execute(where)).one()
    rows = (await conn.execute(sa.select(bin_movements, fills.c.order_id).select_from(
        bin_movements.outerjoin(fills)).where(bin_movements.c.bin_id == bin_id).order_by(
        bin_movements.c.id))).mappings().all()
    counts: dict[str, int] = {}
    found: dict[int, RecalledVial] = {}
    held: dict[int, int] = {}
    """Tablets each fill holds: what it drew, less what went back."""
    for row in rows:
        in_bin = {name for name, n in counts.items() if n > 0}
        fill_id = row["fill_id"]
        if fill_id is not None and row["kind"] in ("fill", "return"):
            held[fill_id] = held.get(fill_id, 0) - row["quantity"]
        if row["kind"] == "fill" and fill_id is not None and lot in in_bin | {row["lot"]}:
            drew = -row["quantity"] if row["lot"] == lot else 0
            seen = found.get(fill_id)
            found[fill_id] = RecalledVial(
                fill_id=fill_id, order_id=row["order_id"], robot=robot, bin=number,
                quantity=(seen.quantity if seen else 0) + drew, at=row["at"],
                mixed=(seen.mixed if seen else False) or len(in_bin) > 1)
        counts[row["lot"]] = counts.get(row["lot"], 0) + row["quantity"]
    fates = {fill_id: disposition or "set aside" for fill_id, disposition in (
        await conn.execute(sa.select(set_aside.c.fill_id, set_aside.c.disposition).where(
            set_aside.c.fill_id.in_(list(found))))).all()}
    return [replace(vial, fate=fates.get(vial.fill_id)) for vial in found.values()
            if held.get(vial.fill_id, 0) > 0]
