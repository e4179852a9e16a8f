"""A stock bottle scanned into a bin: the one path for the console, the CLI and the demo."""

from __future__ import annotations

from dataclasses import dataclass

from controller.alarms.desk import AlarmDesk
from controller.clock import Clock
from controller.config import Settings
from controller.domain.alarms import AlarmChange
from controller.domain.gs1 import BottleScan, ndc_from_gtin, parse_bottle
from controller.domain.roles import Person
from controller.domain.stock import RestockRefused
from controller.store import BinRecord, Store


class QuantityNeeded(RestockRefused):
    """No count was given and the formulary gives no full bottle's count for the NDC."""


@dataclass(frozen=True, slots=True)
class Restocked:
    """What a restock did."""

    bin: BinRecord
    bottle: BottleScan
    quantity: int
    alarms: list[AlarmChange]
    """The bin alarms it changed (those it cleared among them)."""


def _bottle(settings: Settings, raw: str, quantity: int | None) -> tuple[BottleScan, str, int]:
    """The scanned bottle, its NDC (matched in the formulary) and the tablets poured: the
    count given, or a full bottle of the formulary's ``package_quantity``."""
    bottle = parse_bottle(raw)
    ndc = ndc_from_gtin(bottle, settings.formulary)
    count = quantity or settings.formulary[ndc].package_quantity
    if count is None:
        raise QuantityNeeded(f"the formulary gives no package_quantity for NDC {ndc}: give "
                             f"--quantity, the tablets poured")
    return bottle, ndc, count


async def restock_by_scan(settings: Settings, store: Store, robot: str, number: int, raw: str,
                          *, by: Person, quantity: int | None = None,
                          clock: Clock | None = None) -> Restocked:
    """Read the scan, match its NDC in the formulary, check it against the bin's rules, record
    it and judge the bin's alarms again. ScanError, RestockRefused (QuantityNeeded) or
    StoreError say why not; then nothing changed.

    Without ``quantity`` the bottle is a full one of the formulary's ``package_quantity``,
    and its serial may go in once; with it, a partial bottle of that many tablets.
    """
    clock = clock or Clock()
    bottle, ndc, count = _bottle(settings, raw, quantity)
    record = await store.stock.restock(robot, number, bottle, ndc, quantity=count, by=by,
                                       policy=settings.config.stock.policy,
                                       today=clock.now().date(), partial=quantity is not None)
    changes = await AlarmDesk(settings, store, clock).check_bins()
    return Restocked(record, bottle, count, changes)


async def load_by_scan(settings: Settings, store: Store, robot: str, number: int, raw: str, *,
                       by: Person, quantity: int | None = None,
                       clock: Clock | None = None) -> Restocked:
    """Give an empty bin the drug of the scanned bottle (its NDC, lot and expiry), recorded and
    audited; ScanError, RestockRefused or StoreError say why not. The configuration's ``ndc``
    for the bin must then name the same drug, or the next start refuses."""
    clock = clock or Clock()
    bottle, ndc, count = _bottle(settings, raw, quantity)
    record = await store.stock.load_bin(robot, number, bottle, ndc, quantity=count, by=by,
                                        policy=settings.config.stock.policy,
                                        today=clock.now().date())
    changes = await AlarmDesk(settings, store, clock).check_bins()
    return Restocked(record, bottle, count, changes)
