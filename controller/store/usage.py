"""How fast bins are used: the tablets each filled over a time, for days of stock left."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from controller.store.schema import bin_movements


@dataclass(frozen=True, slots=True)
class Usage:
    """One bin's use over a time: tablets that left it into vials, and since when it was
    watched (its first movement in that time)."""

    filled: int
    since: datetime


async def usage_since(conn: AsyncConnection, moment: datetime) -> dict[int, Usage]:
    """Each bin that moved since ``moment``: tablets filled (returns to the bin count
    against them) and the time of its first movement since then."""
    filled = sa.func.coalesce(sa.func.sum(sa.case(
        (bin_movements.c.kind.in_(("fill", "return")), -bin_movements.c.quantity),
        else_=0)), 0)
    query = (sa.select(bin_movements.c.bin_id, filled, sa.func.min(bin_movements.c.at))
             .where(bin_movements.c.at >= moment).group_by(bin_movements.c.bin_id))
    rows = (await conn.execute(query)).all()
    return {bin_id: Usage(int(total), first) for bin_id, total, first in rows}
