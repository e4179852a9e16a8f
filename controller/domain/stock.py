"""Stock in a bin: its lots, first-expired-first-out, and the rules of a restock.

A bin holds one NDC. It may hold more than one lot at once only when the
pharmacy allows mixing; then the lot that expires first is counted out first.
Pure: the store applies what these functions decide.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from controller.domain.gs1 import BottleScan


class LotMixing(StrEnum):
    """What a restock of a new lot does to a bin still holding another."""

    FEFO = "fefo"
    """Allowed; the lot that expires first is dispensed first."""
    REFUSE = "refuse"
    """Refused: run the bin empty or unload it first."""


class RestockRefused(ValueError):
    """A bottle that must not go into this bin, and why."""


@dataclass(frozen=True, slots=True)
class Lot:
    """Tablets of one lot in a bin."""

    lot: str
    expiry: date
    on_hand: int


@dataclass(frozen=True, slots=True)
class BinStock:
    """What a bin holds, lot by lot (lots with tablets on hand), and how much it can."""

    robot: str
    bin: int
    ndc: str
    capacity: int
    lots: tuple[Lot, ...]

    @property
    def on_hand(self) -> int:
        """Tablets in the bin."""
        return sum(lot.on_hand for lot in self.lots)


@dataclass(frozen=True, slots=True)
class RestockPolicy:
    """The pharmacy's restocking rules (configuration ``[stock]``)."""

    expiring_days: int = 30
    """A bottle expiring within this many days is refused, and a loaded lot alarms."""
    mixing: LotMixing = LotMixing.FEFO


def expired_lots(lots: Iterable[tuple[str, date]], today: date) -> list[tuple[str, date]]:
    """The (lot, expiry) pairs past their expiry on ``today`` (a lot is good through its
    expiry date)."""
    return sorted({(lot, expiry) for lot, expiry in lots if expiry < today})


def fefo(lots: tuple[Lot, ...]) -> tuple[Lot, ...]:
    """Lots in the order they are dispensed: the one expiring first, first."""
    return tuple(sorted(lots, key=lambda lot: (lot.expiry, lot.lot)))


def take(lots: tuple[Lot, ...], count: int) -> list[tuple[Lot, int]]:
    """Which lots ``count`` tablets come from, first-expired-first-out.

    Should the robot count more than the record holds (the record was wrong),
    the surplus is put on the last lot, which then reads below zero until a
    person corrects the count.
    """
    if count < 0:
        raise ValueError(f"cannot take {count} tablets")
    if not lots:
        raise ValueError("the bin has no lot to take tablets from")
    taken: dict[Lot, int] = {}
    left = count
    for lot in fefo(tuple(lot for lot in lots if lot.on_hand > 0)):
        n = min(left, lot.on_hand)
        if n:
            taken[lot] = n
            left -= n
    if left:
        last = fefo(lots)[-1]
        taken[last] = taken.get(last, 0) + left
    return list(taken.items())


def check_restock(stock: BinStock, scan: BottleScan, ndc: str, quantity: int, *, today: date,
                  policy: RestockPolicy) -> None:
    """Raise RestockRefused unless ``quantity`` tablets of the scanned bottle may go in."""
    where = f"bin {stock.bin} of {stock.robot}"
    if ndc != stock.ndc:
        raise RestockRefused(f"the bottle holds NDC {ndc}, but {where} holds NDC {stock.ndc}: "
                             f"wrong bottle, do not pour it")
    if scan.expiry < today:
        raise RestockRefused(f"lot {scan.lot} expired on {scan.expiry:%Y-%m-%d}: do not pour it")
    if scan.expiry <= today + timedelta(days=policy.expiring_days):
        raise RestockRefused(f"lot {scan.lot} expires on {scan.expiry:%Y-%m-%d}, within "
                             f"{policy.expiring_days} days: take a bottle with a later date")
    if quantity <= 0:
        raise RestockRefused(f"quantity {quantity}: expected the tablets poured, 1 or more")
    room = stock.capacity - stock.on_hand
    if quantity > room:
        raise RestockRefused(f"{where} holds {stock.on_hand} of at most {stock.capacity}; "
                             f"{quantity} do not fit (at most {max(room, 0)}): pour part of the "
                             f"bottle and give the count poured")
    for lot in stock.lots:
        if lot.on_hand <= 0:
            continue
        if lot.lot == scan.lot and lot.expiry != scan.expiry:
            raise RestockRefused(f"lot {scan.lot} is loaded with expiry {lot.expiry:%Y-%m-%d}, "
                                 f"but this bottle says {scan.expiry:%Y-%m-%d}: check the bottle")
        if lot.lot != scan.lot and policy.mixing is LotMixing.REFUSE:
            raise RestockRefused(f"{where} still holds {lot.on_hand} of lot {lot.lot} "
                                 f"(expires {lot.expiry:%Y-%m-%d}); lots are not mixed here: "
                                 f"run it empty or unload it first")


USAGE_WINDOW = timedelta(days=7)
"""How far back a bin's rate of use is read."""
SHORTEST_WATCH = timedelta(hours=1)
"""A rate read over less than this says nothing yet (one fill is not a rate)."""


def days_of_stock(on_hand: int, filled: int, watched: timedelta) -> float | None:
    """Days until a bin holding ``on_hand`` is empty, at the rate of ``filled`` tablets over
    ``watched``; None when the rate says nothing (no use, or watched under an hour)."""
    if filled <= 0 or watched < SHORTEST_WATCH:
        return None
    per_day = filled / (watched / timedelta(days=1))
    return max(on_hand, 0) / per_day
