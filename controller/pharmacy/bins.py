"""The bins as technicians see them (on hand against par and capacity, lots, days of stock
left at the recent rate) and restocking by scan, with the screens told at once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from controller.config import Settings
from controller.domain.alarms import Alarm
from controller.domain.drugs import Drug
from controller.domain.roles import Person
from controller.domain.stock import USAGE_WINDOW, days_of_stock
from controller.pharmacy.restocking import Restocked, restock_by_scan
from controller.robots.supervisor import Supervisor
from controller.store import BinRecord


@dataclass(frozen=True, slots=True)
class BinView:
    """One bin: its record, its drug, its standing alarms and days of stock left."""

    record: BinRecord
    drug: Drug | None
    alarms: tuple[Alarm, ...]
    days_left: float | None
    """At the rate of the last week (or since the bin was first used); None: no rate yet."""

    @property
    def worst(self) -> Alarm | None:
        """The bin's most urgent standing alarm."""
        return max(self.alarms, key=lambda a: a.priority.rank, default=None)


class Bins:
    """Every bin, and restocking by scan."""

    def __init__(self, settings: Settings, supervisor: Supervisor) -> None:
        self._settings = settings
        self._supervisor = supervisor
        self._store = supervisor.store
        self.hands: Callable[[str, int, int], None] = lambda _robot, _bin, _quantity: None
        """What puts a restock's tablets into the robot: a person's hands at a real robot
        (nothing to do here); :func:`controller.robots.simulated.pour` at a simulated one."""

    async def views(self) -> list[BinView]:
        """Every bin, robot by robot."""
        now = self._supervisor.clock.now()
        usage = await self._store.stock.usage(now - USAGE_WINDOW)
        standing = await self._store.alarms.alarms()
        views = []
        for record in await self._store.stock.bins():
            used = usage.get(record.id)
            days = None if used is None else days_of_stock(record.on_hand, used.filled,
                                                           now - used.since)
            views.append(BinView(
                record, self._settings.formulary.get(record.ndc),
                tuple(a for a in standing if a.robot == record.robot and a.bin == record.bin),
                days))
        return views

    async def restock(self, robot: str, number: int, scan: str, person: Person,
                      quantity: int | None = None) -> Restocked:
        """Pour the scanned bottle into the bin (the one restocking path: its checks, its
        record, its alarms judged again); the screens are told."""
        done = await restock_by_scan(self._settings, self._store, robot, number, scan,
                                     by=person, quantity=quantity, clock=self._supervisor.clock)
        self.hands(robot, number, done.quantity)
        self._supervisor.alarms_changed(done.alarms)
        return done
